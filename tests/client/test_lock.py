"""One sync at a time: pushes during a sync are queued, never dropped, and never overlap."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import time
from pathlib import Path

from devtools.harness.cvd import write_release
from tests.client.conftest import Mirror, fresh_mtime

REAL_RSYNC = "/usr/bin/rsync"


def slow_rsync(directory: Path, delay: float) -> tuple[Path, Path]:
    """An rsync wrapper that logs start/end times around a delayed real rsync."""
    log = directory / "rsync-runs.log"
    script = directory / "slow-rsync"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "--version" ]; then exec {REAL_RSYNC} "$@"; fi\n'
        f'echo "start $(date +%s.%N) $$" >> "{log}"\n'
        f"sleep {delay}\n"
        f'{REAL_RSYNC} "$@"; rc=$?\n'
        f'echo "end $(date +%s.%N) $$" >> "{log}"\n'
        "exit $rc\n"
    )
    script.chmod(0o755)
    return script, log


def intervals(log: Path) -> list[tuple[float, float]]:
    starts: dict[str, float] = {}
    spans = []
    for line in log.read_text().splitlines():
        what, when, pid = line.split()
        if what == "start":
            starts[pid] = float(when)
        else:
            spans.append((starts.pop(pid), float(when)))
    assert not starts, f"unfinished rsync runs: {starts}"
    return sorted(spans)


def assert_no_overlap(spans: list[tuple[float, float]]) -> None:
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end, f"two rsyncs wrote at once: {spans}"


def wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_push_during_sync_is_queued_and_tree_ends_at_newest(
    mirror: Mirror, source_tree: Path, tmp_path: Path
) -> None:
    script, log = slow_rsync(tmp_path, 1.0)
    mirror.write_config(RSYNC=str(script))
    first = mirror.popen(command="sync run-id=first")
    try:
        wait_for(lambda: log.exists() and "start" in log.read_text())
        fresh_mtime(*write_release(source_tree, 28034).values())
        t0 = time.monotonic()
        second = mirror.run(command="sync run-id=second expect-daily=28034")
        assert time.monotonic() - t0 < 5
        assert second.rc == 0 and second.report["status"] == "queued"
        assert second.report["run_id"] == "second"
        out, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 0, err
    import json

    rep = json.loads(out)
    assert rep["status"] == "ok" and rep["rounds"] == 2
    assert rep["databases"]["daily"]["version"] == 28034
    assert len(intervals(log)) == 2
    assert_no_overlap(intervals(log))
    assert not (mirror.state / "update-required").exists()


def test_many_pushes_at_once_never_overlap(mirror: Mirror, tmp_path: Path) -> None:
    script, log = slow_rsync(tmp_path, 0.3)
    mirror.write_config(RSYNC=str(script), MAX_ROUNDS="3")
    procs = [mirror.popen(command=f"sync run-id=p{i}") for i in range(6)]
    statuses = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        statuses.append(__import__("json").loads(out)["status"])
    assert "ok" in statuses and set(statuses) <= {"ok", "queued"}
    spans = intervals(log)
    assert 1 <= len(spans) <= 6
    assert_no_overlap(spans)


def test_sigkill_of_the_wrapper_keeps_the_lock_until_rsync_ends_and_next_run_recovers(
    mirror: Mirror, tmp_path: Path
) -> None:
    script, log = slow_rsync(tmp_path, 1.5)
    mirror.write_config(RSYNC=str(script))
    victim = mirror.popen()
    wait_for(lambda: log.exists() and "start" in log.read_text())
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=10)
    # the orphaned rsync still runs and still holds the lock: a push now is queued
    during = mirror.run()
    assert during.report["status"] == "queued", during.stdout
    wait_for(lambda: "end" in log.read_text(), timeout=30)
    after = mirror.run()
    rep = after.report
    assert after.rc == 0 and rep["status"] == "ok", after.stdout
    assert rep["databases"]["daily"]["md5_ok"]
    assert_no_overlap(intervals(log))
    assert not list((mirror.to / ".clam-clientsync" / "staging").rglob(".~tmp~"))


def test_sigkill_mid_transfer_then_recovery_with_a_real_transfer(
    mirror: Mirror, source_tree: Path, tmp_path: Path
) -> None:
    """Kill the wrapper *and* its rsync mid-transfer; the next run cleans up and publishes."""
    big = write_release(source_tree, 28050, payload_size=3_000_000)
    fresh_mtime(*big.values())
    script, log = slow_rsync(tmp_path, 0)
    mirror.write_config(RSYNC=str(script))
    victim = mirror.popen()
    wait_for(lambda: log.exists() and "start" in log.read_text())
    time.sleep(0.05)
    pgids = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if str(mirror.to).encode() in cmd and b"rsync" in cmd:
                pgids.add(os.getpgid(int(pid)))
    victim.send_signal(signal.SIGKILL)
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    victim.communicate(timeout=10)
    # nothing half-written is served
    for name in ("daily.cvd", "main.cvd"):
        p = mirror.to / name
        assert not p.exists() or p.read_bytes() == (source_tree / name).read_bytes()
    time.sleep(0.2)
    rep = mirror.run().report
    assert rep["status"] == "ok", rep
    assert rep["databases"]["daily"]["version"] == 28050
    assert (mirror.to / "daily.cvd").read_bytes() == (source_tree / "daily.cvd").read_bytes()


def test_lock_file_is_outside_the_served_tree(mirror: Mirror) -> None:
    assert mirror.run().rc == 0
    assert (mirror.state / "lock").exists()
    assert not list(mirror.to.rglob("*lock*"))
    out = subprocess.run(["ls", "-la", str(mirror.state)], capture_output=True, text=True)
    assert "lock" in out.stdout


def test_sigterm_stops_rsync_releases_the_lock_and_still_reports(
    mirror: Mirror, tmp_path: Path
) -> None:
    script, log = slow_rsync(tmp_path, 30)
    mirror.write_config(RSYNC=str(script))
    proc = mirror.popen()
    wait_for(lambda: log.exists() and "start" in log.read_text())
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert time.monotonic() - t0 < 10
    import json

    rep = json.loads(out)
    assert proc.returncode == 75, err
    assert rep["status"] == "failed" and rep["error"]["kind"] == "interrupted"
    # the wrapper and its sleeping child are gone, and the lock is free again
    assert not [p for p in os.listdir("/proc") if p.isdigit() and _cmd(p).find(str(script)) >= 0]
    assert mirror.run(command="version").rc == 0
    mirror.write_config(RSYNC=REAL_RSYNC)
    assert mirror.run().report["status"] == "ok"


def _cmd(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
