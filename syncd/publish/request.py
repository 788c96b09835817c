"""What syncd asks of a mirror beyond the wire grammar (``pushwire.request``): a new run id, and
the release's expected versions, from the source tree's CVD headers or from ``--expect``. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from pushwire.cvd import DATABASES, CvdError, CvdHeader, parse_header
from pushwire.request import RequestError, check_run_id


def new_run_id(now: datetime, suffix: str) -> str:
    """Given the time (UTC) and a few random characters, return a run id."""
    return check_run_id(f"{now.strftime('%Y%m%dT%H%M%SZ')}-{suffix}")


def _headers(headers: Mapping[str, bytes]) -> dict[str, CvdHeader]:
    """Given the first 512 bytes of each CVD of the source tree, return db -> its header."""
    parsed: dict[str, CvdHeader] = {}
    for db, head in headers.items():
        try:
            parsed[db] = parse_header(head)
        except CvdError as err:
            raise RequestError(f"{db}.cvd in the source tree: {err}") from None
    return parsed


def expected_from_headers(headers: Mapping[str, bytes]) -> dict[str, int]:
    """Given the first 512 bytes of each CVD of the source tree, return db -> version."""
    return {db: h.version for db, h in _headers(headers).items()}


def pins_from_headers(headers: Mapping[str, bytes]) -> dict[str, str]:
    """Given the first 512 bytes of each CVD of the source tree, return db -> the md5 its
    header carries: what a push through a hub pins (``md5-<db>=``)."""
    return {db: h.md5 for db, h in _headers(headers).items()}


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
