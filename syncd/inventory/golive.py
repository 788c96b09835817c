"""Checks before a registered mirror goes live: what its web server answers for each name
freshclam and the team use, and whether the host key the admin sent is the one offered.
Pure: the answers in, a checklist out."""

from __future__ import annotations

from dataclasses import dataclass

from pushwire.authorized_keys import AuthorizedKeysError, fingerprint
from syncd.errors import EXIT_FAILED, SyncdError
from syncd.monitor.certs import CertStatus
from syncd.text import clean
from syncd.traffic.localstats import Verdict

VHOST_NAMES = ("database.clamav.net", "db.test.clamav.net")  # the second: a literal wildcard


@dataclass(frozen=True)
class Item:
    """One line of the checklist. Its text quotes the mirror (a Location header, an error's
    text, a body): cleaned here (`syncd.text.clean`), so every sink gets clean text."""

    what: str
    ok: bool
    detail: str
    warn: bool = False  # ok (it does not hold the mirror back), but its admin should act

    def __post_init__(self) -> None:
        object.__setattr__(self, "what", clean(self.what))
        object.__setattr__(self, "detail", clean(self.detail))


def vhost_names(mirror_name: str) -> list[str]:
    return [*VHOST_NAMES, mirror_name]


def judge_local_test(
    host: str, status: int | None, body: str, location: str | None, error: str | None = None
) -> Item:
    """GET /local_test with `Host: host` must answer 200 ``Success``, never a redirect."""
    what = f"http: /local_test for Host {host}"
    if error is not None:
        return Item(what, False, f"no answer: {error}")
    if status is not None and 300 <= status < 400:
        return Item(
            what,
            False,
            f"redirects to {location or '?'}: serve the files on this name directly, with no "
            "redirect (http -> https included)",
        )
    if status != 200:
        return Item(
            what, False, f"HTTP {status}: the vhost must answer this name (see docs/vhosts/)"
        )
    if body.strip() != "Success":
        return Item(
            what,
            False,
            f"answered {body.strip()[:40]!r}, not 'Success': another vhost "
            "answers this name, or local_test is missing",
        )
    return Item(what, True, "Success")


def judge_local_stats(verdict: Verdict) -> Item:
    """/local_stats/ (optional: none is fine) must refuse access without credentials: one open
    to the world, or an answer that cannot tell, is a warning, not a reason to keep the
    mirror out."""
    warn = verdict.verdict in ("open", "unclear")
    return Item("http: /local_stats/", True, verdict.detail, warn=warn)


def judge_host_key(offered: str | None, error: str | None) -> Item:
    if offered is None:
        return Item("ssh: host key", False, f"no answer: {error or 'unknown error'}")
    return Item("ssh: host key", True, f"{fingerprint(offered)} ({offered.split()[0]})")


class TrustError(SyncdError, ValueError):
    """The offered key is not the one the admin sent (or none was offered): nothing is pinned."""

    exit_code = EXIT_FAILED


def check_fingerprint(offered: str, expected: str) -> str:
    """Return the offered key when its fingerprint is `expected`; raise TrustError otherwise."""
    want = expected.strip()
    if not want.startswith("SHA256:"):
        raise TrustError("give the fingerprint as OpenSSH prints it: SHA256:...")
    try:
        got = fingerprint(offered)
    except AuthorizedKeysError as err:
        raise TrustError(f"the mirror offered an unreadable key: {err}") from None
    if got != want:
        raise TrustError(
            f"the mirror offers {got}, not {want}: nothing pinned. Confirm the key with the "
            "admin (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the mirror)"
        )
    return offered


def judge_certificate(status: CertStatus, now: float) -> Item:
    """The https URL's certificate must be one freshclam accepts (`syncd.monitor.certs`);
    one expiring soon passes, saying so."""
    what = f"https: certificate at {status.url}"
    if not status.valid:
        return Item(what, False, f"{status.state}: {'; '.join(status.problems)}")
    left = status.days_left(now)
    detail = f"valid for {', '.join(status.names[:5])}, {left:.0f} more days" if left else "valid"
    if status.problems:
        detail += f" ({'; '.join(status.problems)})"
    return Item(what, True, detail)
