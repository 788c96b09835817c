"""The invariant checkers must be able to fail: each is shown a real violation here."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from devtools.harness.cvd import build_cvd
from devtools.harness.faults import (
    ChurningFile,
    CvdReaders,
    ProcessTrigger,
    RsyncOverlap,
    cvd_problem,
    fill_disk,
    held_locks,
    is_mounted,
    leaked_processes,
    secret_hits,
    tiny_tmpfs,
)
from devtools.harness.nginx import Nginx


def test_cvd_problem_sees_truncation_and_bit_flips() -> None:
    good = build_cvd("daily", 1, payload_size=4096)
    assert cvd_problem(good) is None
    assert "shorter" in (cvd_problem(good[:100]) or "")
    assert "MD5" in (cvd_problem(good[:-1]) or "")
    flipped = bytearray(good)
    flipped[600] ^= 1
    assert "MD5" in (cvd_problem(bytes(flipped)) or "")


def test_readers_catch_a_half_written_cvd_served_by_nginx(tmp_path: Path) -> None:
    docroot = tmp_path / "htdocs"
    docroot.mkdir()
    final = build_cvd("daily", 2, payload_size=200_000)
    (docroot / "daily.cvd").write_bytes(final)
    with Nginx(tmp_path / "nginx", docroot) as web, CvdReaders([web.base_url], ["daily"]) as r:
        with ChurningFile(docroot / "daily.cvd", final, chunks=20, pause_s=0.01) as churn:
            deadline = time.monotonic() + 10
            while not r.bad and time.monotonic() < deadline:
                time.sleep(0.05)
        assert churn.rewrites >= 1
    assert r.bad, "an in-place rewrite must be caught by the readers"
    assert cvd_problem((docroot / "daily.cvd").read_bytes()) is None  # left whole


def test_rsync_overlap_is_detected(tmp_path: Path) -> None:
    src, dest = tmp_path / "src", tmp_path / "mirrors" / "t"
    src.mkdir()
    dest.mkdir(parents=True)
    (src / "big").write_bytes(os.urandom(400_000))
    argv = ["rsync", "-a", "--bwlimit=100", f"{src}/", f"{dest}/"]
    with RsyncOverlap(tmp_path / "mirrors") as overlap:
        procs = [subprocess.Popen(argv) for _ in range(2)]
        time.sleep(0.5)
        for p in procs:
            p.kill()
            p.wait()
    assert overlap.overlaps


def test_process_trigger_kills_and_stops_at_the_chosen_moment(tmp_path: Path) -> None:
    victim = subprocess.Popen(["sleep", "30"])
    trig = ProcessTrigger(lambda p: p.pid == victim.pid, sig=signal.SIGSTOP, stop_s=0.3).start()
    time.sleep(0.1)
    trig.stop()
    assert trig.fired
    assert victim.poll() is None
    kill = ProcessTrigger(lambda p: p.pid == victim.pid, delay_s=0.1).start()
    assert victim.wait(5) == -signal.SIGKILL
    kill.stop()


def test_leaks_locks_and_secrets_are_counted(tmp_path: Path) -> None:
    stray = subprocess.Popen(["sleep", "30"])
    try:
        assert any(str(stray.pid) in line for line in leaked_processes(tmp_path, []))
    finally:
        stray.kill()
        stray.wait()
    assert not any(str(stray.pid) in line for line in leaked_processes(tmp_path, []))
    lock = tmp_path / "lock"
    lock.touch()
    fd = os.open(lock, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    child = subprocess.Popen(["sleep", "30"], pass_fds=[fd])  # holds it, like an orphaned rsync
    os.close(fd)
    try:
        assert held_locks([lock]) == [str(lock)]
    finally:
        child.kill()
        child.wait()
    assert held_locks([lock]) == []
    (tmp_path / "client.log").write_text("rsync: auth with pw-abc123 failed\n")
    hits = secret_hits(["pw-abc123"], [tmp_path], {"stdout": "ok"}, set())
    assert len(hits) == 1 and "client.log" in hits[0]


def test_tiny_tmpfs_fills_and_is_unmounted_even_on_failure(tmp_path: Path) -> None:
    mount = tmp_path / "disk"
    if os.geteuid() != 0:  # labelled error path: without root no disk can be made full
        with pytest.raises(OSError, match="cannot mount"), tiny_tmpfs(mount):
            pass
        return
    with pytest.raises(RuntimeError), tiny_tmpfs(mount, "256k"):
        assert is_mounted(mount)
        filler = fill_disk(mount)
        assert 200_000 < filler.stat().st_size <= 256 * 1024
        with pytest.raises(OSError):
            (mount / "more").write_bytes(b"x" * 8192)
        raise RuntimeError("the test fails here")
    assert not is_mounted(mount)
