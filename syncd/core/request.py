"""What syncd asks of a mirror beyond the wire grammar (``pushwire.request``): a new run id, and
the release's expected versions, from the source tree's CVD headers or from ``--expect``. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from pushwire.cvd import DATABASES, CvdError, parse_header
from pushwire.request import RequestError, check_run_id


def new_run_id(now: datetime, suffix: str) -> str:
    """Given the time (UTC) and a few random characters, return a run id."""
    return check_run_id(f"{now.strftime('%Y%m%dT%H%M%SZ')}-{suffix}")


def expected_from_headers(headers: Mapping[str, bytes]) -> dict[str, int]:
    """Given the first 512 bytes of each CVD of the source tree, return db -> version."""
    expected: dict[str, int] = {}
    for db, head in headers.items():
        try:
            expected[db] = parse_header(head).version
        except CvdError as err:
            raise RequestError(f"{db}.cvd in the source tree: {err}") from None
    return expected


def pins_from_headers(headers: Mapping[str, bytes]) -> dict[str, str]:
    """Given the first 512 bytes of each CVD of the source tree, return db -> the md5 its
    header carries: what a push through a hub pins (``md5-<db>=``)."""
    pins: dict[str, str] = {}
    for db, head in headers.items():
        try:
            pins[db] = parse_header(head).md5
        except CvdError as err:
            raise RequestError(f"{db}.cvd in the source tree: {err}") from None
    return pins


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
