"""Syncs against real rsync daemons: publish, protect, fail over, verify, refuse."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.harness.cvd import corrupt_body, release_time, write_cvd, write_release
from devtools.harness.ports import free_port
from devtools.harness.rsyncd import RsyncDaemon
from tests.client.conftest import R1, R2, Mirror, corrupt_at_rsync1_good_at_rsync2, fresh_mtime


def test_happy_path_reports_versions_and_keeps_local_files(
    mirror: Mirror, source_tree: Path
) -> None:
    (mirror.to / "stray.txt").write_text("old junk")
    (mirror.to / "local_stats").mkdir()
    (mirror.to / "local_stats" / "index.html").write_text("stats")
    res = mirror.run(command="sync run-id=r-1 expect-daily=28033")
    rep = res.report
    assert res.rc == 0, res.stderr
    assert rep["status"] == "ok" and rep["error"] is None
    assert rep["verb"] == "sync" and rep["run_id"] == "r-1"
    assert rep["source_requested"] == R1 and rep["source_used"] == R1
    assert [a["source"] for a in rep["attempts"]] == [R1]
    assert rep["databases"]["daily"]["version"] == 28033
    assert rep["databases"]["main"]["version"] == 62
    assert rep["databases"]["bytecode"]["version"] == 335
    assert all(db["md5_ok"] for db in rep["databases"].values())
    assert rep["databases"]["daily"]["build_time"] == f"{release_time():%Y-%m-%dT%H:%M:%SZ}"
    assert rep["files_transferred"] == 4 and rep["bytes_transferred"] > 0
    assert rep["files_deleted"] == 1
    assert ">f+++++++++ daily.cvd" in rep["changes"]
    assert rep["rsync_version"]
    for name in ("daily.cvd", "main.cvd", "bytecode.cvd", "timestamp"):
        assert (mirror.to / name).read_bytes() == (source_tree / name).read_bytes()
    assert (mirror.to / "local_logo.png").read_bytes() == b"logo"
    assert (mirror.to / "local_stats" / "index.html").read_text() == "stats"
    assert not (mirror.to / "stray.txt").exists()
    assert oct((mirror.to / "daily.cvd").stat().st_mode & 0o777) == "0o644"
    assert oct((mirror.to / ".clam-clientsync").stat().st_mode & 0o777) == "0o700"
    # the log has the archvsync shape
    line = mirror.log_text().splitlines()[0]
    assert "clam-clientsync[" in line and "]: " in line
    # status prints the last report; a second sync transfers nothing
    assert mirror.run(command="status").report == rep
    again = mirror.run().report
    assert again["status"] == "ok" and again["files_transferred"] == 0
    assert again["files_deleted"] == 0


def test_new_release_replaces_files_by_rename(mirror: Mirror, source_tree: Path) -> None:
    assert mirror.run().rc == 0
    before = (mirror.to / "main.cvd").stat().st_ino
    old_daily = (mirror.to / "daily.cvd").stat().st_ino
    fresh_mtime(write_cvd(source_tree, "daily", 28034))
    rep = mirror.run(command="expect-daily=28034").report
    assert rep["status"] == "ok" and rep["databases"]["daily"]["version"] == 28034
    assert rep["files_transferred"] == 1
    assert (mirror.to / "main.cvd").stat().st_ino == before  # untouched
    assert (mirror.to / "daily.cvd").stat().st_ino != old_daily  # a new inode, renamed in


def test_refused_source_falls_over(
    mirror: Mirror, rsync_pair: tuple[RsyncDaemon, RsyncDaemon]
) -> None:
    rsync_pair[0].stop()
    rep = mirror.run().report
    assert rep["status"] == "ok" and rep["source_used"] == R2
    assert [a["source"] for a in rep["attempts"]] == [R1, R2]
    assert rep["attempts"][0]["exit_code"] == 10
    assert rep["attempts"][0]["error"].startswith("rsync_transient")


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a hung daemon)."""
    port = free_port()
    srv = socket.create_server(("127.0.0.1", port))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                held.append(conn)
            except TimeoutError:
                continue
            except OSError:
                return

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield port
    stop.set()
    t.join(5)
    for c in held:
        c.close()
    srv.close()


def test_hanging_source_falls_over(
    mirror: Mirror, rsync_pair: tuple[RsyncDaemon, RsyncDaemon], silent_listener: int
) -> None:
    _, r2 = rsync_pair
    mirror.write_config(
        SOURCES=f"{R1}=rsync://127.0.0.1:{silent_listener} {R2}={r2.url}",
        TIMEOUT="2",
        CONTIMEOUT="2",
    )
    res = mirror.run(timeout=30)
    rep = res.report
    assert rep["status"] == "ok", res.stderr
    assert rep["source_used"] == R2
    assert rep["attempts"][0]["exit_code"] in (10, 12, 30, 35)
    assert rep["attempts"][0]["duration_s"] < 10


def test_deadline_kills_a_stalled_rsync(mirror: Mirror, silent_listener: int) -> None:
    mirror.write_config(
        SOURCES=f"{R1}=rsync://127.0.0.1:{silent_listener}",
        TIMEOUT="600",
        CONTIMEOUT="600",
        DEADLINE="2",
    )
    res = mirror.run(timeout=30)
    rep = res.report
    assert res.rc == 75
    assert rep["error"]["kind"] == "deadline"
    assert rep["attempts"][0]["exit_code"] is None
    assert 1.5 < rep["duration_s"] < 8
    # nothing of that rsync survives (its whole process group was killed)
    assert not _processes_with(str(mirror.to))


def _processes_with(text: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if text.encode() in cmd and b"rsync" in cmd:
                found.append(int(pid))
    return found


def test_request_deadline_lowers_the_config_deadline(mirror: Mirror, silent_listener: int) -> None:
    mirror.write_config(
        SOURCES=f"{R1}=rsync://127.0.0.1:{silent_listener}",
        TIMEOUT="600",
        CONTIMEOUT="600",
        DEADLINE="600",
    )
    rep = mirror.run(command="sync deadline=1", timeout=30).report
    assert rep["error"]["kind"] == "deadline" and rep["duration_s"] < 6


def test_wrong_password_is_permanent(mirror: Mirror) -> None:
    mirror.write_config(RSYNC_PASSWORD="wrong-password")
    res = mirror.run()
    rep = res.report
    assert res.rc == 1
    assert rep["status"] == "failed"
    assert rep["error"]["kind"] == "auth_failed" and rep["error"]["retryable"] is False
    assert "auth failed" in rep["error"]["message"]
    assert all(a["exit_code"] == 5 for a in rep["attempts"])
    assert "wrong-password" not in res.stdout + res.stderr + mirror.log_text()


def test_unknown_module_is_permanent(mirror: Mirror) -> None:
    mirror.write_config(MODULE="nosuchmodule")
    rep = mirror.run().report
    assert rep["error"]["kind"] == "unknown_module"


def test_empty_source_trips_max_delete_and_mirror_keeps_its_files(
    mirror: Mirror, source_tree: Path
) -> None:
    write_cvd(source_tree, "safebrowsing", 1)
    mirror.write_config(MAX_DELETE="2")
    assert mirror.run().rc == 0
    before = {p.name: p.read_bytes() for p in mirror.to.iterdir() if p.is_file()}
    for p in source_tree.iterdir():
        p.unlink()
    res = mirror.run()
    rep = res.report
    assert res.rc == 1 and rep["error"]["kind"] == "max_delete"
    assert [a["source"] for a in rep["attempts"]] == [R1]  # local: no fail over
    assert rep["attempts"][0]["exit_code"] == 25
    assert {p.name: p.read_bytes() for p in mirror.to.iterdir() if p.is_file()} == before


def test_small_tree_emptied_at_source_is_still_not_wiped(mirror: Mirror, source_tree: Path) -> None:
    assert mirror.run().rc == 0
    for p in source_tree.iterdir():
        p.unlink()
    rep = mirror.run().report
    assert rep["error"]["kind"] == "empty_source"
    assert (mirror.to / "daily.cvd").exists()


def test_corrupt_cvd_is_never_published(mirror: Mirror, source_tree: Path) -> None:
    assert mirror.run().rc == 0
    good = (mirror.to / "daily.cvd").read_bytes()
    fresh_mtime(*write_release(source_tree, 28034, main=63).values())
    corrupt_body(source_tree / "daily.cvd")
    fresh_mtime(source_tree / "daily.cvd")
    res = mirror.run()
    rep = res.report
    assert res.rc == 1
    assert rep["error"]["kind"] == "corrupt_cvd" and "daily.cvd" in rep["error"]["message"]
    assert (mirror.to / "daily.cvd").read_bytes() == good
    assert rep["databases"]["daily"]["version"] == 28033 and rep["databases"]["daily"]["md5_ok"]
    assert rep["databases"]["main"]["version"] == 63  # a good file is still published
    # both sources serve the corrupt file: both were tried
    assert [a["source"] for a in rep["attempts"]] == [R1, R2]


def test_corrupt_at_rsync1_good_at_rsync2(
    tmp_path: Path, mirror: Mirror, source_tree: Path
) -> None:
    with corrupt_at_rsync1_good_at_rsync2(tmp_path, mirror, source_tree, 28034):
        rep = mirror.run().report
    assert rep["status"] == "ok" and rep["source_used"] == R2
    assert rep["databases"]["daily"]["version"] == 28034


def test_downgrade_is_refused(mirror: Mirror, source_tree: Path) -> None:
    write_release(source_tree, 28040)
    assert mirror.run().rc == 0
    fresh_mtime(*write_release(source_tree, 28030).values())
    rep = mirror.run().report
    assert rep["status"] == "failed" and rep["error"]["kind"] == "downgrade"
    assert rep["databases"]["daily"]["version"] == 28040


def test_unmet_expectation_fails_and_says_so(mirror: Mirror) -> None:
    res = mirror.run(command="expect-daily=28099")
    rep = res.report
    assert res.rc == 75 and rep["error"]["kind"] == "expectation_unmet"
    assert "28099" in rep["error"]["message"]
    assert not (mirror.to / "daily.cvd").exists()  # never published below expectation


def test_symlinks_out_of_the_tree_and_dotdot_are_not_followed(
    tmp_path: Path, mirror: Mirror, source_tree: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    (source_tree / "escape").symlink_to(secret)
    (source_tree / "escape-rel").symlink_to("../secret.txt")
    (source_tree / "sub").mkdir()
    (source_tree / "sub" / "up").symlink_to("../../secret.txt")
    (source_tree / "inside").symlink_to("daily.cvd")
    rep = mirror.run().report
    assert rep["status"] == "ok", rep
    assert not (mirror.to / "escape").exists() and not (mirror.to / "escape").is_symlink()
    assert not (mirror.to / "escape-rel").is_symlink()
    assert not (mirror.to / "sub" / "up").is_symlink()
    assert os.readlink(mirror.to / "inside") == "daily.cvd"
    for p in mirror.to.rglob("*"):
        if p.is_symlink():
            assert Path(os.path.realpath(p)).is_relative_to(mirror.to.resolve())


def test_stale_temp_files_of_a_killed_run_are_cleaned(mirror: Mirror) -> None:
    assert mirror.run().rc == 0
    staging = mirror.to / ".clam-clientsync" / "staging"
    (staging / ".~tmp~").mkdir()
    (staging / ".~tmp~" / "daily.cvd").write_bytes(b"half")
    (mirror.to / ".clam-clientsync-tmp.daily.cvd.4242").write_bytes(b"half")
    (staging / ".daily.cvd.Ab12Cd").write_bytes(b"half")
    rep = mirror.run().report
    assert rep["status"] == "ok"
    assert not (staging / ".~tmp~").exists()
    assert not (staging / ".daily.cvd.Ab12Cd").exists()
    assert not (mirror.to / ".clam-clientsync-tmp.daily.cvd.4242").exists()


def test_served_tree_edited_by_hand_is_repaired(mirror: Mirror, source_tree: Path) -> None:
    assert mirror.run().rc == 0
    (mirror.to / "main.cvd").unlink()
    (mirror.to / "daily.cvd").write_bytes(b"scribbled")  # in place: breaks the shared inode
    rep = mirror.run().report
    assert rep["status"] == "ok"
    assert (mirror.to / "main.cvd").read_bytes() == (source_tree / "main.cvd").read_bytes()
    assert rep["databases"]["main"]["md5_ok"]


def test_first_run_over_a_legacy_tree_seeds_by_hard_links(
    mirror: Mirror, source_tree: Path
) -> None:
    """A mirror the old script kept: the same files are not transferred again."""
    for p in source_tree.iterdir():
        (mirror.to / p.name).write_bytes(p.read_bytes())
        st = p.stat()
        os.utime(mirror.to / p.name, ns=(st.st_atime_ns, st.st_mtime_ns))
    inode = (mirror.to / "main.cvd").stat().st_ino
    rep = mirror.run().report
    assert rep["status"] == "ok" and rep["files_transferred"] == 0
    assert (mirror.to / "main.cvd").stat().st_ino == inode
    assert "staging tree created with 4 files" in mirror.log_text()


def test_a_hung_rsync1_leaves_time_for_rsync2(
    mirror: Mirror, rsync_pair: tuple[RsyncDaemon, RsyncDaemon], silent_listener: int
) -> None:
    _, r2 = rsync_pair
    mirror.write_config(
        SOURCES=f"{R1}=rsync://127.0.0.1:{silent_listener} {R2}={r2.url}",
        TIMEOUT="600",
        CONTIMEOUT="600",
        DEADLINE="6",
    )
    rep = mirror.run(timeout=30).report
    assert rep["status"] == "ok" and rep["source_used"] == R2
    first = rep["attempts"][0]
    assert first["exit_code"] is None and "deadline" in first["error"]
    assert 2.5 < first["duration_s"] < 4.5


def test_a_symlinked_private_dir_is_refused(mirror: Mirror, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (mirror.to / ".clam-clientsync").symlink_to(elsewhere)
    rep = mirror.run().report
    assert rep["error"]["kind"] == "publish_failed" and "symlink" in rep["error"]["message"]
    assert list(elsewhere.iterdir()) == []
