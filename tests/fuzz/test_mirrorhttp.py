"""Fuzz syncd's HTTP check against a hostile server: it ends in Served or CheckFailed."""

from __future__ import annotations

import contextlib
import gc
import socket
import tomllib
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from hypothesis import example, given
from hypothesis import strategies as st

from devtools.harness.cvd import build_cvd
from syncd.httpcheck import client as mirrorhttp
from tests.fuzz.hostilehttp import HostileHttp
from tests.fuzz.profiles import FUZZ

HEADER = build_cvd("daily", 28033, payload_size=64)[:512]


def ok(body: bytes, status: bytes = b"200 OK", extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n"
        + extra
        + b"Connection: close\r\n\r\n"
        + body
    )


_TRIMMED = HEADER.rstrip(b" ")
BAD_UNIX_TIME = (_TRIMMED[:-10] + b"\x1f" + _TRIMMED[-10:]).ljust(512, b" ")
STAMP = b"1764063000"  # parsed only: freshness is judged elsewhere (noqa: date)
GOOD = [ok(STAMP + b"\n"), ok(HEADER, b"206 Partial Content")]

STATUS_LINES = st.sampled_from(
    [
        b"200 OK",
        b"206 Partial Content",
        b"301 Moved",
        b"302 Found",
        b"404 Not Found",
        b"999 What",
        b"000",
        b"",
        b"200",
        b"abc",
        b"-1 x",
        b"2000000000000 x",
    ]
)
HEADERS = st.sampled_from(
    [
        b"",
        b"Content-Length: 99999999\r\n",
        b"Content-Length: -1\r\n",
        b"Content-Length: x\r\n",
        b"Location: http://evil/\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Content-Encoding: gzip\r\n",
        b"Content-Length: 1\r\nContent-Length: 2\r\n",
        b"X: \xff\xfe\r\n",
        b"Bad Header Line\r\n",
        b"Location: \xff\r\n",
    ]
)


@st.composite
def answers(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.binary(max_size=600))
    body = draw(st.one_of(st.binary(max_size=700), st.just(HEADER), st.just(STAMP)))
    if kind == 1:
        return ok(body, draw(STATUS_LINES), draw(HEADERS))
    raw = b"HTTP/1.1 " + draw(STATUS_LINES) + b"\r\n" + draw(HEADERS) + b"\r\n" + body
    cut = draw(st.integers(0, len(raw)))
    return raw[:cut] if draw(st.booleans()) else raw


@pytest.fixture(scope="module")
def server() -> Iterator[HostileHttp]:
    with HostileHttp() as srv:
        yield srv


async def _check(base_url: str) -> object:
    async with mirrorhttp.new_client(2.0, 4) as client:
        (target,) = await mirrorhttp.targets(base_url, "db.test.clamav.net")
        return await mirrorhttp.check(client, target, ["daily"])


@FUZZ
@given(st.lists(answers(), min_size=1, max_size=2))
@example(GOOD)
@example([ok(STAMP), ok(b"x" * 10_000, b"206 Partial Content")])
@example([ok(b"\xff\xfe123")])
@example([ok(b"1" * 64)])
@example([ok(STAMP), ok(BAD_UNIX_TIME, b"206 Partial Content")])
def test_http_check_ends_in_served_or_check_failed(
    server: HostileHttp, queued: list[bytes]
) -> None:
    server.queue(*queued)
    try:
        served = trio.run(_check, server.base_url)
    except mirrorhttp.CheckFailed as err:
        assert str(err)  # any message is fine; the type is the contract
        return
    assert isinstance(served, mirrorhttp.Served)
    assert served.versions["daily"] >= 0


async def _check_quietly(base_url: str) -> None:
    with contextlib.suppress(mirrorhttp.CheckFailed):
        await _check(base_url)


async def _read_half(base_url: str) -> None:
    """The bug the pyproject filter once hid: a body left half read inside `aiter_bytes()`."""
    async with httpx.AsyncClient(trust_env=False) as client:
        with contextlib.suppress(mirrorhttp.CheckFailed):
            async with client.stream("GET", f"{base_url}/daily.cvd") as resp:
                async for _chunk in resp.aiter_bytes():
                    raise mirrorhttp.CheckFailed("sends more than the bytes asked for")


def _resource_warnings(server: HostileHttp, answer: bytes, read: Callable[[str], Any]) -> set[str]:
    server.queue(answer)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        trio.run(read, server.base_url)
        gc.collect()
    return {str(w.message) for w in seen if issubclass(w.category, ResourceWarning)}


def _verdict(message: str, entries: list[str]) -> str:
    """Return what pytest does with a ResourceWarning `message` under `entries` (pyproject's
    ``filterwarnings``, applied as pytest applies them: a later entry wins)."""
    with warnings.catch_warnings():
        warnings.resetwarnings()
        for entry in entries:
            action, text, category = [*entry.split(":"), "", ""][:3]
            cls = ResourceWarning if category == "ResourceWarning" else Warning
            warnings.filterwarnings(action, text, cls)  # type: ignore[arg-type]
        try:
            warnings.warn(message, ResourceWarning, stacklevel=1)
        except ResourceWarning:
            return "error"
        return "ignore"


class _Endless(HostileHttp):
    """Answers ``Success`` and then spaces without end (no length: closed-delimited)."""

    def handle(self, conn: socket.socket) -> bool:
        with conn, contextlib.suppress(OSError):
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nSuccess")
            while not self._stop.is_set():
                conn.sendall(b" " * 65536)
        return True


def test_no_check_leaves_a_stream_to_the_garbage_collector(server: HostileHttp) -> None:
    """A body syncd refuses unread (gzip) and one it stops reading at its cap (an endless
    /local_test) leave no stream generator half read: pyproject's filters make any such
    ResourceWarning an error, with no exception for httpx. The planted bug (a body left half
    read inside ``aiter_bytes()``) shows the warning would be seen. Before bodies were read raw
    with a cap, httpx's decoder failed mid-body on the gzip answer and left three generators
    to the collector (pyproject ignored them then)."""
    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    entries = tomllib.loads(pyproject.read_text())["tool"]["pytest"]["ini_options"]
    entries = entries["filterwarnings"]
    gzip_answer = ok(b"x" * 20, extra=b"Content-Encoding: gzip\r\n")
    assert _resource_warnings(server, gzip_answer, _check_quietly) == set()
    with _Endless() as endless, warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(mirrorhttp.CheckFailed, match="more than the 64 bytes"):
            mirrorhttp.local_test(endless.base_url, "db.test.clamav.net")
        gc.collect()
    assert not [w for w in seen if issubclass(w.category, ResourceWarning)], seen
    # a body left half read is seen, and is an error
    half = _resource_warnings(server, ok(b"x" * 5000), _read_half)
    assert any("Response.aiter_bytes" in m for m in half), half
    assert {_verdict(m, entries) for m in half} == {"error"}, half
