"""What syncd asks of a mirror beyond the wire grammar (``pushwire.request``): a new run id, and
the release's expected versions given with ``--expect`` (those of the source tree come from its
headers, read once: `syncd.release.tree.SourceTree`). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pushwire.cvd import DATABASES
from pushwire.request import RequestError, check_run_id


def new_run_id(now: datetime, suffix: str) -> str:
    """Given the time (UTC) and a few random characters, return a run id."""
    return check_run_id(f"{now.strftime('%Y%m%dT%H%M%SZ')}-{suffix}")


def parse_expect(items: Iterable[str]) -> dict[str, int]:
    """Parse ``--expect daily=N`` options; raise RequestError naming the bad one."""
    out: dict[str, int] = {}
    for item in items:
        db, sep, version = item.partition("=")
        if not sep or db not in DATABASES or not (version.isascii() and version.isdigit()):
            raise RequestError(
                f"--expect {item!r}: use DB=VERSION with DB one of {', '.join(DATABASES)}"
            )
        out[db] = int(version)
    return out
