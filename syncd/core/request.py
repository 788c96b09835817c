"""What syncd asks a mirror: the release's expected versions and the request line sent as
``SSH_ORIGINAL_COMMAND``. Pure.

The client accepts exactly the verbs ``sync``, ``status``, ``version`` and the options
``run-id=[A-Za-z0-9._-]{1,64}`` and ``expect-<db>=<digits>``; anything else is rejected.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime

from syncd.core.cvd import DATABASES, CvdError, parse_header

VERBS = ("sync", "status", "version")
_RUN_ID = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")


class RequestError(ValueError):
    """A request or an expected version cannot be used; the message says why."""


def new_run_id(now: datetime, suffix: str) -> str:
    """Given the time (UTC) and a few random characters, return a run id."""
    run_id = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{suffix}"
    check_run_id(run_id)
    return run_id


def check_run_id(run_id: str) -> str:
    if not _RUN_ID.match(run_id):
        raise RequestError(f"run id {run_id[:80]!r} must match [A-Za-z0-9._-]{{1,64}}")
    return run_id


def expected_from_headers(headers: Mapping[str, bytes]) -> dict[str, int]:
    """Given the first 512 bytes of each CVD of the source tree, return db -> version."""
    expected: dict[str, int] = {}
    for db, head in headers.items():
        try:
            expected[db] = parse_header(head).version
        except CvdError as err:
            raise RequestError(f"{db}.cvd in the source tree: {err}") from None
    return expected


def parse_expect(items: Iterable[str]) -> dict[str, int]:
    """Parse ``--expect daily=N`` options; raise RequestError naming the bad one."""
    out: dict[str, int] = {}
    for item in items:
        db, sep, version = item.partition("=")
        if not sep or db not in DATABASES or not version.isdigit():
            raise RequestError(
                f"--expect {item!r}: use DB=VERSION with DB one of {', '.join(DATABASES)}"
            )
        out[db] = int(version)
    return out


MAX_DEADLINE = 86_400  # the client's own bound for deadline=


def render_request(
    verb: str,
    run_id: str | None = None,
    expected: Mapping[str, int] = {},
    deadline: float | None = None,
) -> str:
    """Return the request line, e.g. ``sync run-id=R expect-daily=28034 deadline=900``.

    `deadline` (seconds) is how long syncd waits for the answer: the client stops its rsync by
    then on its own, since sshd cannot signal a forced command for us."""
    if verb not in VERBS:
        raise RequestError(f"unknown verb {verb!r}")
    tokens = [verb]
    if run_id is not None:
        tokens.append(f"run-id={check_run_id(run_id)}")
    for db in sorted(expected):
        if db not in DATABASES or expected[db] < 0:
            raise RequestError(f"cannot expect {db}={expected[db]}")
        tokens.append(f"expect-{db}={int(expected[db])}")
    if deadline is not None:
        tokens.append(f"deadline={min(MAX_DEADLINE, max(1, int(deadline)))}")
    return " ".join(tokens)
