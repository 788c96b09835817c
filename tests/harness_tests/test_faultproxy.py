"""The fault proxy really delays, stalls, drops and refuses, in front of a real rsync daemon."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from devtools.harness.binaries import require
from devtools.harness.faultproxy import FaultProxy, closed_port
from devtools.harness.rsyncd import RsyncDaemon


def _pull(
    port: int, daemon: RsyncDaemon, dest: Path, timeout: int = 10
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "RSYNC_PASSWORD": daemon.password}
    return subprocess.run(
        [
            require("rsync"),
            "-rt",
            f"--contimeout={timeout}",
            f"--timeout={timeout}",
            "--",
            f"rsync://{daemon.user}@127.0.0.1:{port}/{daemon.module}/",
            f"{dest}/",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def proxied(rsync_pair: tuple[RsyncDaemon, RsyncDaemon]):  # type: ignore[no-untyped-def]
    daemon = rsync_pair[0]
    with FaultProxy(daemon.host, daemon.port) as proxy:
        yield proxy, daemon


def test_pass_and_delay(proxied, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    proxy, daemon = proxied
    proxy.set("pass", delay_s=0.01)
    out = _pull(proxy.port, daemon, tmp_path / "a")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "a" / "daily.cvd").exists()
    assert proxy.stats.accepted == 1 and proxy.stats.bytes_down > 2000
    assert proxy.stats.delayed > 0 and proxy.stats.stalled == proxy.stats.dropped == 0
    for _ in range(100):  # the proxy notes a session's size once the server's side ends
        if proxy.stats.last_session_down:
            break
        time.sleep(0.02)
    assert proxy.stats.last_session_down == proxy.stats.bytes_down  # one whole session
    mark = proxy.stats.copy()
    proxy.set("pass", delay_s=0)
    assert _pull(proxy.port, daemon, tmp_path / "a2").returncode == 0
    since = proxy.stats.since(mark)  # what this second pull did, and only that
    assert since.accepted == 1 and since.delayed == 0 and since.bytes_down > 0


def test_stall_forwards_nothing(proxied) -> None:  # type: ignore[no-untyped-def]
    proxy, _ = proxied
    proxy.set("stall")
    with socket.create_connection((proxy.host, proxy.port), timeout=5) as s:
        s.settimeout(0.5)
        with pytest.raises(TimeoutError):
            s.recv(100)  # the daemon's greeting is held back
        assert proxy.stats.stalled == 1  # counted by the proxy: the stall fired
    proxy.set("pass")
    with socket.create_connection((proxy.host, proxy.port), timeout=5) as s:
        assert s.recv(100).startswith(b"@RSYNCD:")


def test_drop_mid_stream_breaks_the_transfer(proxied, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    proxy, daemon = proxied
    proxy.set("drop", drop_after=600)
    out = _pull(proxy.port, daemon, tmp_path / "b")
    assert out.returncode != 0
    assert proxy.stats.dropped == 1


def test_refuse_and_closed_port(proxied) -> None:  # type: ignore[no-untyped-def]
    proxy, _ = proxied
    proxy.set("refuse")
    # the reset may arrive before or during the read: either way, not one byte of the daemon
    with (
        contextlib.suppress(ConnectionResetError),
        socket.create_connection((proxy.host, proxy.port), timeout=5) as s,
    ):
        s.settimeout(5)
        assert s.recv(100) == b""
    assert proxy.stats.refused == 1
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", closed_port()), timeout=5)
    with pytest.raises(ValueError, match="mode must be one of"):
        proxy.set("explode")
