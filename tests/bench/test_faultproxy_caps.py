"""The throttling proxy's caps that benchmarks/served.py relies on: one egress cap summed over
every connection of a source, and a cap per listener (a mirror's own downlink). Only lower
bounds on time are asserted (a loaded machine is slower, never faster)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from devtools.harness.faultproxy import FaultProxy

SIZE = 120_000


@pytest.fixture
def source() -> Iterator[int]:
    """A server that sends SIZE bytes to each connection, then closes it."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"x" * SIZE)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    stop.set()
    thread.join(5)
    listener.close()


def _fetch(host: str, port: int, got: list[int]) -> None:
    with socket.create_connection((host, port), timeout=20) as s:
        total = 0
        while chunk := s.recv(65536):
            total += len(chunk)
        got.append(total)


def _fetch_all(addresses: list[tuple[str, int]]) -> tuple[float, list[int]]:
    got: list[int] = []
    threads = [threading.Thread(target=_fetch, args=(h, p, got)) for h, p in addresses]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return time.monotonic() - start, got


def test_the_aggregate_cap_is_shared_by_all_connections(source: int) -> None:
    with FaultProxy("127.0.0.1", source) as proxy:
        proxy.set("pass", aggregate_bps=400_000)
        took, got = _fetch_all([(proxy.host, proxy.port)] * 3)
        assert got == [SIZE] * 3
        # 3 x 120 kB through one 400 kB/s bucket: 0.9 s at least (each alone would take 0.3 s)
        assert took >= 0.8
        assert proxy.stats.bytes_down == 3 * SIZE


def test_a_listener_caps_each_of_its_connections(source: int) -> None:
    with FaultProxy("127.0.0.1", source) as proxy:
        proxy.add_listener("127.4.0.7", rate_bps=200_000)
        took, got = _fetch_all([("127.4.0.7", proxy.port)])
        assert got == [SIZE]
        assert took >= 0.5  # 120 kB at 200 kB/s
        _, again = _fetch_all([(proxy.host, proxy.port)])  # the main listener has no cap
        assert again == [SIZE]


def test_a_listener_outside_loopback_is_refused(source: int) -> None:
    with FaultProxy("127.0.0.1", source) as proxy, pytest.raises(ValueError, match="loopback"):
        proxy.add_listener("0.0.0.0")
