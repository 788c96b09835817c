"""What the monitor says about a change: mail to the mirror's admins, and the team's digest.

Pure: transitions and mirror facts in, :class:`Mail` values out; whether to send now is a
function of when the last mail went out. Every transition reaches the team's digest even when
the admin's mail is held back by the rate limit: nothing is silent. A mirror's first check is
not a change: its admins hear of it only when it found a problem, and the digest counts the
mirrors first found fresh in one line instead of listing each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from syncd.monitor.freshness import State, Transition
from syncd.text import clean

ADVICE = {
    State.LAGGING: (
        "Your mirror serves an older database than the current release. Check the sync log "
        "(~/var/clam-clientsync/clam-clientsync.log), run 'clam-clientsync --doctor' as the "
        "clamavdb user, and make sure rsync1.clamav.net and rsync2.clamav.net are reachable."
    ),
    State.OLD: (
        "The timestamp file on your mirror is over a day old: pushes are not arriving or not "
        "completing. Check that sshd accepts the pusher keys (authorized_keys, from= addresses, "
        "firewall on port 22), then the sync log and 'clam-clientsync --doctor'."
    ),
    State.UNREACHABLE: (
        "We could not fetch /timestamp from your mirror. Check the web server, the virtual host "
        "for database.clamav.net and db.*.clamav.net (no redirects, http -> https included), "
        "and the firewall on both IPv4 and IPv6."
    ),
    State.REMOVED: (
        "Your mirror has been stale for two days and is out of the DNS rotation. It comes back "
        "by itself once it serves fresh data again; nothing needs to be re-registered."
    ),
    State.FRESH: "Your mirror serves the current release again and is back in the DNS rotation.",
}


@dataclass(frozen=True)
class Mail:
    """One mail; its subject and each line of its body cleaned (`syncd.text.clean`) as it
    is made: they quote mirror names and reasons, which came from outside."""

    to: tuple[str, ...]
    subject: str
    body: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "subject", clean(self.subject, 250))
        lines = self.body.split("\n")
        object.__setattr__(self, "body", "\n".join(clean(line, None) for line in lines))


@dataclass(frozen=True)
class MirrorChange:
    mirror: str
    transition: Transition
    admins: tuple[str, ...]
    notify: tuple[str, ...] = ()
    family: str | None = None  # "IPv4" / "IPv6" when only one family changed


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def recipients(change: MirrorChange) -> tuple[str, ...]:
    """The notification addresses when the admin gave some (the ``||`` part), else the admins."""
    return change.notify or change.admins


def worth_mailing(change: MirrorChange) -> bool:
    """Whether the mirror's admins hear of `change`: every change, and a first check that found
    a problem (a first check that found the mirror fresh tells them nothing)."""
    t = change.transition
    return not (t.first and t.new is State.FRESH)


def mirror_mail(change: MirrorChange, sender_name: str = "ClamAV mirror monitor") -> Mail:
    """Return the mail telling a mirror's admins about one transition."""
    t = change.transition
    fam = f" ({change.family})" if change.family else ""
    subject = f"[ClamAV mirror] {change.mirror}{fam}: {t.label}"
    if t.first:
        what = f"was checked for the first time at {_when(t.at)}: it is {t.new.value}."
    else:
        what = f"changed from {t.old.value} to {t.new.value} at {_when(t.at)}."
    body = "\n".join(
        [
            "Hello,",
            "",
            f"the ClamAV mirror {change.mirror}{fam} {what}",
            "",
            f"Reason: {t.reason}",
            "",
            ADVICE[t.new],
            "",
            f"-- {sender_name}",
            "",
        ]
    )
    return Mail(recipients(change), subject, body)


def local_stats_mail(mirror: str, detail: str, to: Sequence[str]) -> Mail:
    """Return the mail telling a mirror's admins that its /local_stats/ is open to the world
    (the check sent no credentials)."""
    body = "\n".join(
        [
            "Hello,",
            "",
            f"the statistics of the ClamAV mirror {mirror} at /local_stats/ answer anyone who "
            "asks, without a login:",
            "",
            detail,
            "",
            "The mirror stays in rotation; this is a warning only. The mirror guide asks that "
            "/local_stats/ be protected with the login and password of the rsync account "
            "(RSYNC_USER and RSYNC_PASSWORD in clam-clientsync.conf).",
            "",
            "-- ClamAV mirror monitor",
            "",
        ]
    )
    return Mail(tuple(to), f"[ClamAV mirror] {mirror}: /local_stats/ is open to the world", body)


def digest(changes: Sequence[MirrorChange], team: Sequence[str], at: float) -> Mail | None:
    """Return the team's one digest for a monitor run; None when nothing changed."""
    if not changes or not team:
        return None
    first_fresh = [c for c in changes if not worth_mailing(c)]
    listed = [c for c in changes if worth_mailing(c)]
    lines = [f"{len(listed)} mirror state change(s) at {_when(at)}:", ""]
    if first_fresh:
        lines[1:1] = [f"{len(first_fresh)} mirror(s) checked for the first time: fresh."]
    for c in sorted(listed, key=lambda c: (-c.transition.new.severity, c.mirror)):
        fam = f" [{c.family}]" if c.family else ""
        lines.append(
            f"- {c.mirror}{fam}: {c.transition.old.value} -> {c.transition.label}: "
            f"{c.transition.reason}"
        )
    worst = max(c.transition.new.severity for c in changes)
    counts = {s: sum(c.transition.new is s for c in changes) for s in State}
    summary = ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
    if worst > 0:
        tag = "problems"
    elif any(not c.transition.first for c in changes):
        tag = "recoveries"
    else:
        tag = "first checks"
    return Mail(tuple(team), f"[ClamAV mirrors] {tag}: {summary}", "\n".join([*lines, ""]))


def may_send(last_sent_at: float | None, now: float, min_interval_s: float) -> bool:
    """Whether another mail to the same mirror's admins may go out now (rate limit)."""
    return last_sent_at is None or now - last_sent_at >= min_interval_s
