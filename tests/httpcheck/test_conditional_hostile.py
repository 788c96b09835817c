"""Hostile answers to the monitor's steady request (``Range`` of a release file's last bytes,
its validators compared with those proven): each is a problem, read no further than the
release's size, never a file judged whole; the well-behaved answers beside them pass (the
checks are not vacuous).

Proven able to fail: with a 206 accepted as unchanged without its Content-Range and bytes
judged, the another-size and other-bytes cases were judged whole; before a 304 was told from
a redirect, the 304 case read "redirects to ?"."""

from __future__ import annotations

import hashlib

import pytest

from devtools.harness.hostilehttp import Answer, RoutedHttp, answer, endless, gzip_bomb
from syncd.httpcheck.client import Served, check, new_client, targets
from syncd.httpcheck.conditional import Proven
from syncd.release.manifest import FILE_TAIL_BYTES, ReleaseFile

NAME = "daily-28034.cdiff"
BODY = bytes(range(256)) * 8  # 2048 bytes
N = FILE_TAIL_BYTES
FILE = ReleaseFile(NAME, len(BODY), hashlib.sha256(BODY).hexdigest(), BODY[-N:])
ETAG = '"6a1b2c3d-800"'
KNOWN = Proven(NAME, FILE.sha256, FILE.size, ETAG, None)
TAIL = f"/{NAME} bytes=-{N}"
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
            answer(gzip_bomb(BODY[-N:], 64 << 20), PARTIAL, b"Content-Encoding: gzip\r\n"),
            "Content-Encoding 'gzip'",
        ),
        (
            answer(BODY[-N:], PARTIAL, b"Content-Length: 99999999\r\n"),
            "conflicting Content-Length",
        ),
        (answer(BODY * 4096), f"/{NAME} sends {len(BODY) * 4096} bytes where 2048 were"),
        (_range(BODY[-N:], size=FILE.size + 10), f"is {FILE.size + 10} bytes, the release's"),
        (_range(bytes(N)), f"/{NAME}'s last {N} bytes differ from the release's"),
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
    served = await _check({TAIL: _range(BODY[-N:])})
    assert served.incomplete == () and served.proven == (KNOWN,)
    # a server ignoring Range: the whole file, compared, its new validator remembered
    served = await _check({TAIL: answer(BODY, extra=b'ETag: "7b-800"\r\n')})
    assert served.incomplete == ()
    assert served.proven == (Proven(NAME, FILE.sha256, FILE.size, '"7b-800"', None),)
    # the right bytes under a validator too long to keep: read whole again, nothing remembered
    served = await _check(
        {TAIL: _range(BODY[-N:], etag='"' + "a" * 300 + '"'), f"/{NAME}": answer(BODY)}
    )
    assert served.incomplete == () and served.proven == ()


@pytest.mark.trio
async def test_right_last_bytes_under_other_validators_are_never_trusted() -> None:
    """A 206 with the release's last bytes and size but another ETag (a server ignoring any
    precondition, the file replaced below its last bytes): the file is read whole again and
    judged as it is. Proven able to fail: with the validators not compared, the rewritten
    file was judged whole and its old proof kept."""
    other = '"7b-800"'
    steady = _range(BODY[-N:], etag=other)
    rewritten = bytes(len(BODY) - N) + BODY[-N:]
    served = await _check({TAIL: steady, f"/{NAME}": answer(rewritten, extra=b"ETag: 7b\r\n")})
    [problem] = served.incomplete
    assert "differs from the release's" in problem and served.proven == ()
    served = await _check({TAIL: steady, f"/{NAME}": answer(BODY, extra=b'ETag: "7b-800"\r\n')})
    assert served.incomplete == ()
    assert served.proven == (Proven(NAME, FILE.sha256, FILE.size, other, None),)
