"""Network faults between the client and rsync1 (through the harness's fault proxy)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.harness.cvd import write_release
from devtools.harness.faultproxy import FaultProxy
from devtools.harness.rsyncd import RsyncDaemon
from tests.client.conftest import R1, R2, Mirror, fresh_mtime


@pytest.fixture
def proxy(
    rsync_pair: tuple[RsyncDaemon, RsyncDaemon], mirror: Mirror, source_tree: Path
) -> Iterator[FaultProxy]:
    """rsync1 reached through a fault proxy; a release big enough to be cut mid-transfer."""
    r1, r2 = rsync_pair
    fresh_mtime(*write_release(source_tree, 28040, payload_size=1_500_000).values())
    with FaultProxy(r1.host, r1.port) as p:
        mirror.write_config(SOURCES=f"{R1}=rsync://127.0.0.1:{p.port} {R2}={r2.url}")
        yield p


def test_reset_mid_transfer_falls_over_to_rsync2(
    proxy: FaultProxy, mirror: Mirror, source_tree: Path
) -> None:
    proxy.set("drop", drop_after=300_000)
    rep = mirror.run().report
    assert rep["status"] == "ok", rep
    assert [a["source"] for a in rep["attempts"]] == [R1, R2]
    assert rep["attempts"][0]["exit_code"] in (10, 12, 23)
    assert proxy.stats.dropped >= 1
    assert (mirror.to / "daily.cvd").read_bytes() == (source_tree / "daily.cvd").read_bytes()


def test_stall_mid_transfer_hits_rsync_timeout_and_falls_over(
    proxy: FaultProxy, mirror: Mirror
) -> None:
    mirror.write_config(TIMEOUT="2", DEADLINE="10")
    proxy.set("pass", rate_bps=2_000_000)

    def stall_soon() -> None:
        deadline = time.monotonic() + 10
        while proxy.stats.bytes_down < 200_000 and time.monotonic() < deadline:
            time.sleep(0.01)
        proxy.set("stall")

    t = threading.Thread(target=stall_soon, daemon=True)
    t.start()
    t0 = time.monotonic()
    rep = mirror.run(timeout=60).report
    t.join(5)
    assert rep["status"] == "ok", rep
    assert rep["source_used"] == R2
    # rsync's --timeout=2 may fire (30) or, as rsync is known to, hang: then our deadline
    # gives rsync1 half of the 10 s budget and rsync2 the rest
    assert rep["attempts"][0]["exit_code"] in (12, 30, None)
    assert time.monotonic() - t0 < 15


def test_deadline_mid_transfer_leaves_the_served_tree_intact(
    proxy: FaultProxy, mirror: Mirror, source_tree: Path
) -> None:
    mirror.write_config(DEADLINE="2", TIMEOUT="600", SOURCES=f"{R1}=rsync://127.0.0.1:{proxy.port}")
    proxy.set("pass", rate_bps=200_000)  # ~25 s for the release: the deadline comes first
    res = mirror.run(timeout=30)
    rep = res.report
    assert res.rc == 75 and rep["error"]["kind"] == "deadline"
    assert not (mirror.to / "daily.cvd").exists()  # nothing half-transferred is published
    assert proxy.stats.bytes_down > 0
    proxy.set("pass", rate_bps=0)
    again = mirror.run().report
    assert again["status"] == "ok" and again["databases"]["daily"]["version"] == 28040
