"""The monitor's guard against its own outage: when most of the fleet fails at once, the likely
cause is the checker (its network, its resolver, the sources), not the mirrors.

Pure: one pass's checks in, a verdict out. The rule: in some address family, more than
`share` of the mirrors checked on it failed (and at least two did): the monitor suspects
itself, changes no DNS, and says so (mail to the team once per episode, the page, the metrics).
A single mirror failing never trips it, and neither does a failing minority.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from syncd.monitor.announce import Mail

MIN_FAILED = 2  # below this, a failure is a mirror's, whatever the share


def suspicion(checks: Iterable[tuple[str, str, bool]], share: float) -> str | None:
    """Given one pass's (mirror, address family, check ok) and the configured share, return
    why the monitor suspects itself, or None when it trusts its checks."""
    total: dict[str, set[str]] = {}
    failed: dict[str, set[str]] = {}
    for mirror, family, ok in checks:
        total.setdefault(family, set()).add(mirror)
        if not ok:
            failed.setdefault(family, set()).add(mirror)
    for family in sorted(total):
        bad, n = len(failed.get(family, ())), len(total[family])
        if bad >= MIN_FAILED and bad > share * n:
            return (
                f"{bad} of {n} mirrors failed their {family} check at once (more than "
                f"{share:.0%}): the monitor's own network, resolver or the sources are more "
                "likely at fault than the mirrors; DNS left as it is"
            )
    return None


def suspicion_mail(reason: str, team: Sequence[str], at: float) -> Mail | None:
    """The team's one mail for an episode of suspicion (None without a team)."""
    if not team:
        return None
    when = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = (
        f"At {when} the mirror monitor stopped trusting its own checks:\n\n{reason}.\n\n"
        "While this lasts the monitor records what it sees but takes no mirror out of the DNS "
        "rotation. Check the monitor host's network and resolver, and the source servers. "
        "This mail is sent once; the status page says when the monitor trusts its checks "
        "again.\n"
    )
    return Mail(tuple(team), "[ClamAV mirrors] the monitor suspects itself", body)
