"""Hostile answers to the monitor's conditional request (``Range`` of a release file's last
bytes under ``If-Range``): each is a problem, read no further than the release's size, never
a file judged whole; the well-behaved answers beside them pass (the checks are not vacuous).

Proven able to fail: with a 206 accepted as unchanged without its Content-Range and bytes
judged, the another-size and other-bytes cases were judged whole; before a 304 was told from
a redirect, the 304 case read "redirects to ?"."""

from __future__ import annotations

import hashlib

import pytest

from devtools.harness.hostilehttp import Answer, RoutedHttp, answer, endless, gzip_bomb
from syncd.httpcheck.client import Served, check, new_client, targets
from syncd.httpcheck.conditional import Proven
from syncd.release.manifest import ReleaseFile

NAME = "daily-28034.cdiff"
BODY = bytes(range(256)) * 8  # 2048 bytes
FILE = ReleaseFile(NAME, len(BODY), hashlib.sha256(BODY).hexdigest(), BODY[-64:])
ETAG = '"6a1b2c3d-800"'
KNOWN = Proven(NAME, FILE.sha256, FILE.size, ETAG, None)
TAIL = f"/{NAME} bytes={FILE.size - 64}-{FILE.size - 1}"
PARTIAL = b"206 Partial Content"


def _range(body: bytes, size: int = FILE.size, etag: str = ETAG, extra: bytes = b"") -> bytes:
    first = size - len(body)
    return answer(
        body,
        PARTIAL,
        b"Content-Range: bytes %d-%d/%d\r\nETag: %s\r\n" % (first, size - 1, size, etag.encode())
        + extra,
    )


async def _check(routes: dict[str, Answer]) -> Served:
    base: dict[str, Answer] = {"/timestamp": answer(b"1800000000\n")}  # (noqa: date)
    with RoutedHttp({**base, **routes}) as mirror:
        [target] = await targets(mirror.base_url, "db.pl.clamav.net")
        async with new_client(5.0, 2) as client:
            return await check(client, target, [], [FILE], known={NAME: KNOWN})


@pytest.mark.trio
@pytest.mark.parametrize(
    ("tail", "why"),
    [
        (answer(b"", b"304 Not Modified"), f"/{NAME} answered HTTP 304"),
        (endless(BODY), f"/{NAME} answered without a Content-Length"),
        (
            answer(gzip_bomb(BODY[-64:], 64 << 20), PARTIAL, b"Content-Encoding: gzip\r\n"),
            "Content-Encoding 'gzip'",
        ),
        (
            answer(BODY[-64:], PARTIAL, b"Content-Length: 99999999\r\n"),
            "conflicting Content-Length",
        ),
        (answer(BODY * 4096), f"/{NAME} sends {len(BODY) * 4096} bytes where 2048 were"),
        (_range(BODY[-64:], size=FILE.size + 10), f"is {FILE.size + 10} bytes, the release's"),
        (_range(bytes(64)), f"/{NAME}'s last 64 bytes differ from the release's"),
        (answer(bytes(len(BODY)), extra=b'ETag: "new"\r\n'), "differs from the release's"),
    ],
    ids=[
        "304",
        "endless",
        "gzip-bomb",
        "two-lengths",
        "oversize-200",
        "another-size",
        "other-bytes",
        "changed-200-other-body",
    ],
)
async def test_each_hostile_answer_is_a_problem(tail: Answer, why: str) -> None:
    served = await _check({TAIL: tail})
    [problem] = served.incomplete
    assert why in problem, problem
    assert served.proven == ()


@pytest.mark.trio
async def test_well_behaved_answers_pass() -> None:
    # unchanged: the last bytes under the validator remembered
    served = await _check({TAIL: _range(BODY[-64:])})
    assert served.incomplete == () and served.proven == (KNOWN,)
    # changed (If-Range failed): the whole file, compared, its new validator remembered
    served = await _check({TAIL: answer(BODY, extra=b'ETag: "7b-800"\r\n')})
    assert served.incomplete == ()
    assert served.proven == (Proven(NAME, FILE.sha256, FILE.size, '"7b-800"', None),)
    # the right bytes under a validator too long to keep: read whole again, nothing remembered
    served = await _check(
        {TAIL: _range(BODY[-64:], etag='"' + "a" * 300 + '"'), f"/{NAME}": answer(BODY)}
    )
    assert served.incomplete == () and served.proven == ()
