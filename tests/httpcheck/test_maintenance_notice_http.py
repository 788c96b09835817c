"""The monitor's read of ``/local_maintenance``, bounded in bytes and time, against real nginx
serving what an admin (or an attacker with the served tree) put there, and a hostile server for
what nginx would never send.

Proven to fail: with the Content-Length bound removed from `_notice_answer`, the oversize case
failed (the body was read up to the cap before it was refused, for another reason); with the
overall deadline not applied (``move_on_after`` of a day), the dripping answer outlasted the
test's own deadline."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from devtools.harness.hostilehttp import HostileHttp, RoutedHttp, answer, endless
from devtools.harness.nginx import Nginx
from pushwire.maintenance import MAX_NOTICE_BYTES, Notice, format_time, render_notice
from syncd.httpcheck.client import Target, maintenance_notice, new_client
from syncd.monitor.maintenance import HTTP, http_sighting

T = 1_800_000_000.0


def _read(base_url: str, timeout_s: float = 3.0) -> tuple[int, bytes] | None:
    async def go() -> tuple[int, bytes] | None:
        async with new_client(timeout_s, 2) as client:
            with trio.fail_after(timeout_s * 3):  # the test's own deadline
                return await maintenance_notice(
                    client, Target("IPv4", base_url, "db.pl.clamav.net")
                )

    return trio.run(go)


def test_nginx_serves_the_notice_and_the_monitor_reads_it(
    tmp_path: Path, nginx_factory: Callable[..., Nginx]
) -> None:
    root = tmp_path / "www"
    root.mkdir()
    nginx = nginx_factory(root)
    assert _read(nginx.base_url) == (404, b"")
    seen = http_sighting(404, b"", T)
    assert seen is not None and seen.window is None and seen.problem is None
    (root / "local_maintenance").write_bytes(render_notice(Notice(T, T + 3600, "disks")))
    got = _read(nginx.base_url)
    assert got is not None and got[0] == 200
    seen = http_sighting(*got, T)
    assert seen is not None and seen.window is not None and seen.window.origin == HTTP
    assert (seen.window.starts, seen.window.ends, seen.window.reason) == (T, T + 3600, "disks")


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"{" + b" " * (MAX_NOTICE_BYTES * 50) + b"}", "more than the 2048 of a notice"),
        (b"\x00\xff garbage", "not UTF-8"),
        (b'{"maintenance_version": 1}', "no 'from' time"),
        (
            json.dumps(
                {
                    "maintenance_version": 1,
                    "from": format_time(T),
                    "until": format_time(T + 100 * 365 * 86400),
                    "reason": "a century",
                }
            ).encode(),
            "longer than",
        ),
    ],
)
def test_what_nginx_serves_that_is_no_notice_is_a_problem(
    tmp_path: Path, nginx_factory: Callable[..., Nginx], content: bytes, why: str
) -> None:
    root = tmp_path / "www"
    root.mkdir()
    (root / "local_maintenance").write_bytes(content)
    got = _read(nginx_factory(root).base_url)
    assert got is not None
    seen = http_sighting(*got, T)
    assert seen is not None and seen.window is None and why in (seen.problem or ""), seen
    assert len(seen.problem or "") <= 300


def test_a_symlink_to_a_large_file_is_read_bounded(
    tmp_path: Path, nginx_factory: Callable[..., Nginx]
) -> None:
    root = tmp_path / "www"
    root.mkdir()
    big = tmp_path / "big"
    big.write_bytes(b"x" * (4 << 20))
    os.symlink(big, root / "local_maintenance")
    got = _read(nginx_factory(root).base_url)
    assert got is not None
    if got[0] == 404 or got[0] == 403:  # nginx refusing symlinks: no notice either way
        return
    assert got[0] == 0 and b"more than the 2048" in got[1]


def test_what_no_web_server_sends_is_bounded() -> None:
    """Each answer queued twice: the notice is asked with HEAD, then (not a 404) with GET. The
    redirect to an unusable URL is refused on the HEAD already."""
    with HostileHttp() as server:
        server.queue(answer(b"", b"302 Found", b"Location: javascript:alert(1)\r\n"))
        got = _read(server.base_url)
        assert got is not None and got[0] == 0 and b"unusable URL" in got[1]
        chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        server.queue(chunked, chunked)
        assert _read(server.base_url) == (0, b"answered without a Content-Length")
        server.queue(*[answer(b"x" * 10, extra=b"Content-Encoding: gzip\r\n")] * 2)
        got = _read(server.base_url)
        assert got is not None and got[0] == 0
        server.queue(*[b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabcdefghijk"] * 2)
        got = _read(server.base_url)
        assert got is not None and got[0] in (0, 200) and len(got[1]) <= MAX_NOTICE_BYTES
        server.queue(*[b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"] * 2)
        got = _read(server.base_url)
        assert got == (503, b"") and http_sighting(*got, T) is None  # says nothing
        # a 404 is taken from the HEAD: no error page asked for
        server.queue(answer(b"<html>404</html>", b"404 Not Found"))
        assert _read(server.base_url) == (404, b"")
        assert server.served == 10


def _drip(conn: socket.socket) -> None:
    """A notice of 1000 bytes, sent a byte every 0.3 s: each read within its timeout, the
    whole far past it."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    for _ in range(1000):
        conn.sendall(b" ")
        time.sleep(0.3)


def test_an_endless_answer_ends_within_the_read_timeout() -> None:
    with RoutedHttp({"/local_maintenance": _drip}) as slow:
        assert _read(slow.base_url, timeout_s=1.0) is None  # no answer: what was seen holds
    with RoutedHttp({"/local_maintenance": endless(b"{")}) as flood:
        got = _read(flood.base_url, timeout_s=1.0)
        assert got == (0, b"answered without a Content-Length")


def test_a_notice_error_never_escapes_the_sighting() -> None:
    for body in (b"", b"[]", b"null", b"{}" * 2000):
        seen = http_sighting(200, body, T)
        assert seen is not None and seen.window is None and seen.problem
