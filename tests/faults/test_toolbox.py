"""The invariant checkers must be able to fail: each is shown a real violation here."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from devtools.harness.cvd import build_cvd
from devtools.harness.faults import (
    REAP_WAIT_S,
    ChurningFile,
    CvdReaders,
    ProcessTrigger,
    RsyncOverlap,
    cvd_problem,
    descendants,
    fill_disk,
    held_locks,
    is_mounted,
    leaked_processes,
    secret_hits,
    staging_leftovers,
    tiny_tmpfs,
    tree_holders,
)
from devtools.harness.nginx import Nginx
from devtools.harness.soak import invariants
from devtools.harness.soak.fleet import Fleet
from tests.fuzz.hostilehttp import HostileHttp


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


TRIALS = 100


class Window:
    """A planted faulty publisher's bad window, held open until the readers have read the file
    at least once from start to end inside it (bounded): so detection does not depend on luck."""

    def __init__(self, readers: CvdReaders, url: str) -> None:
        self.readers, self.url = readers, url

    def __call__(self) -> None:
        assert self.readers.wait_fresh_read(self.url, 5.0)


def rewrite_in_place(path: Path, data: bytes, window: Window) -> None:
    with path.open("r+b") as f:
        f.write(data[: len(data) // 2])
        f.flush()
        window()
        f.write(data[len(data) // 2 :])
        f.truncate(len(data))


def unlink_then_rename(path: Path, data: bytes, window: Window) -> None:
    tmp = path.with_name(".new")
    tmp.write_bytes(data)
    path.unlink()
    window()
    tmp.rename(path)


def truncate_and_write(path: Path, data: bytes, window: Window) -> None:
    with path.open("wb") as f:
        f.write(data[: len(data) // 3])
        f.flush()
        window()
        f.write(data[len(data) // 3 :])


@pytest.fixture(scope="module")
def served_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    root = tmp_path_factory.mktemp("served")
    docroot = root / "htdocs"
    docroot.mkdir()
    root.chmod(0o755)
    (docroot / "timestamp").write_text("1\n")
    with Nginx(root / "nginx", docroot) as web:
        yield docroot, web.base_url


@pytest.mark.parametrize(
    ("publish", "expect"),
    [
        (rewrite_in_place, ("MD5 mismatch", "body cut short")),
        (unlink_then_rename, ("HTTP 404 for a file served whole before",)),
        (truncate_and_write, ("MD5 mismatch", "shorter than a header", "body cut short")),
    ],
)
def test_readers_catch_every_faulty_publish_every_time(
    served_tree: tuple[Path, str],
    publish: Callable[[Path, bytes, Window], None],
    expect: tuple[str, ...],
) -> None:
    docroot, base = served_tree
    path, url = docroot / "daily.cvd", f"{base}/daily.cvd"
    caught = 0
    with CvdReaders([base], ["daily"]) as readers:
        for trial in range(TRIALS):
            good = build_cvd("daily", 100 + 2 * trial, payload_size=48 * 1024)
            tmp = docroot / ".good"
            tmp.write_bytes(good)
            tmp.replace(path)  # published atomically: never a violation
            Window(readers, url)()  # and read whole at least once
            before = len(readers.bad)
            publish(
                path,
                build_cvd("daily", 101 + 2 * trial, payload_size=48 * 1024),
                Window(readers, url),
            )
            Window(readers, url)()
            new = readers.bad[before:]
            caught += bool(new)
            assert all(any(e in b for e in expect) for b in new), new
    assert caught == TRIALS
    assert readers.checked > TRIALS


def test_readers_catch_a_cut_body_a_bad_timestamp_and_versions_going_back(
    served_tree: tuple[Path, str],
) -> None:
    docroot, base = served_tree
    with HostileHttp() as srv:
        body = build_cvd("daily", 7, payload_size=4096)
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        srv.queue(head + body[:1000])  # the length announced, then the connection closes
        with CvdReaders([srv.base_url], ["daily"], timestamp=False) as readers:
            assert readers.wait_reads(f"{srv.base_url}/daily.cvd", 1)
        assert readers.bad and "body cut short" in readers.bad[0], readers.bad
        assert "RemoteProtocolError" in readers.bad[0]
    stamp = docroot / "timestamp"
    with CvdReaders([base], ["daily"]) as readers:
        for db_version, text, expect in [
            (300, "1000\n", None),
            (299, "1000\n", "version went back: 299 after 300"),
            (301, "999\n", "version went back: 999 after 1000"),
            (302, "10x\n", "is not a number"),
        ]:
            before = len(readers.bad)
            (docroot / ".new").write_bytes(build_cvd("daily", db_version, payload_size=1024))
            (docroot / ".new").replace(docroot / "daily.cvd")
            (docroot / ".ts").write_text(text)
            (docroot / ".ts").replace(stamp)
            for url in (f"{base}/daily.cvd", f"{base}/timestamp"):
                Window(readers, url)()
            new = readers.bad[before:]
            assert (expect is None and not new) or any(expect in b for b in new), (expect, new)
    # a file never served whole may be missing: main.cvd is not there, and that is no violation
    with CvdReaders([base], ["main"], timestamp=False) as readers:
        assert readers.wait_reads(f"{base}/main.cvd", 3)
    assert readers.bad == []
    stamp.write_text("1\n")


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


def test_staging_leftovers_are_found_and_a_finished_tree_is_clean(tmp_path: Path) -> None:
    to = tmp_path / "htdocs"
    staging = to / ".clam-clientsync" / "staging"
    staging.mkdir(parents=True)
    for clean in (to / "daily.cvd", to / "local_keep.txt", staging / "daily.cvd"):
        clean.write_bytes(b"x")
    assert staging_leftovers(to) == []
    planted = [
        staging / ".~tmp~",  # --delay-updates' directory of a killed rsync
        to / ".daily.cvd.Xy3k9Q",  # rsync's temp file, had it written into TO
        staging / ".main.cvd.a1B2c3",
        to / ".clam-clientsync-tmp.4711",
    ]
    planted[0].mkdir()
    for path in planted[1:]:
        path.write_bytes(b"half")
    assert staging_leftovers(to) == sorted(str(p) for p in planted)


def test_a_short_lived_orphan_holding_a_tree_is_caught_at_once(tmp_path: Path) -> None:
    tree = tmp_path / "mirrors" / "m0"
    tree.mkdir(parents=True)
    # as the fleet does: children from before (another test's servers) are not ours to count
    fleet = SimpleNamespace(root=tmp_path, server_pids=[], foreign=descendants([os.getpid()]))
    # lives 4 s: a 15 s grace would have waited for it to end and seen nothing
    orphan = subprocess.Popen(["sleep", "4"], cwd=tree, start_new_session=True)
    try:
        started = time.monotonic()
        found = invariants.leftover_processes(cast("Fleet", fleet))
        assert time.monotonic() - started < REAP_WAIT_S + 2
        assert any(f"leaked process: {orphan.pid}" in v for v in found), found
        assert any(f"holding a mirror's tree: {orphan.pid}" in v for v in found), found
        assert any(str(orphan.pid) in h for h in tree_holders(tmp_path / "mirrors"))
    finally:
        orphan.kill()
        orphan.wait()
    exited = subprocess.Popen(["true"], cwd=tree)  # ended, not yet reaped: not a leak
    time.sleep(0.3)
    assert invariants.leftover_processes(cast("Fleet", fleet)) == []
    exited.wait()


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
