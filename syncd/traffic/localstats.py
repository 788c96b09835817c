"""The guide's ``/local_stats/``: a mirror's access statistics, which "must be protected with
login and password" (the account's rsync credentials). syncd asks for it without any
credentials (it never sends a secret in this check) and judges the answer. Pure.

Verdicts: ``protected`` (401 or 403: as it should be), ``none`` (404: the mirror has none,
which is allowed), ``open`` (200: anyone can read it: a warning to the admin), ``unclear``
(a redirect, another status, no answer: the check cannot tell).
"""

from __future__ import annotations

from dataclasses import dataclass

from syncd.text import clean

PATH = "local_stats/"
VERDICTS = ("protected", "none", "open", "unclear")

FIX_OPEN = (
    "protect /local_stats/ with a login and password (the rsync account's, as the mirror "
    "guide asks): nginx auth_basic, Apache AuthType Basic"
)


@dataclass(frozen=True)
class Verdict:
    verdict: str  # one of VERDICTS
    detail: str

    @property
    def warning(self) -> bool:
        return self.verdict == "open"


def judge(status: int | None, location: str | None = None, error: str | None = None) -> Verdict:
    """Given the answer to ``GET /local_stats/`` without credentials (status None: none, and
    why in `error`), return the verdict."""
    if status is None:
        return Verdict("unclear", f"no answer: {clean(error or 'unknown error', 200)}")
    if status in (401, 403):
        return Verdict("protected", f"refuses access without credentials (HTTP {status})")
    if status == 404:
        return Verdict("none", "no /local_stats/ (optional)")
    if status == 200:
        return Verdict("open", f"open to the world without credentials (HTTP 200): {FIX_OPEN}")
    if 300 <= status < 400:
        return Verdict(
            "unclear",
            f"redirects to {clean(location or '?', 200)}: answer 401 here when not logged in",
        )
    return Verdict("unclear", f"answered HTTP {status}")
