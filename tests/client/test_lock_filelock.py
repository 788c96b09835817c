"""The sync lock is filelock's ``flock`` lock: a holder using filelock (or plain ``flock``) makes
a push queue, and the lock ends only when no process holds its file description any more."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import filelock
import pytest

from clientside.locking import LockFileError, SyncLock
from tests.client.conftest import Mirror


def _can_lock(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_a_push_finding_the_lock_held_by_another_filelock_is_queued(mirror: Mirror) -> None:
    mirror.state.mkdir(mode=0o700, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, filelock; lock = filelock.FileLock(sys.argv[1], mode=0o600);"
            " lock.acquire(); print('held', flush=True); sys.stdin.read()",
            str(mirror.state / "lock"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        queued = mirror.run(command="sync run-id=second")
        assert queued.rc == 0 and queued.report["status"] == "queued", queued.stdout
        assert (mirror.state / "update-required").read_text() == "second\n"
    finally:
        holder.communicate(timeout=10)
    done = mirror.run()
    assert done.report["status"] == "ok", done.stdout
    assert _can_lock(mirror.state / "lock")


def test_release_closes_and_never_unlocks_a_description_rsync_still_holds(tmp_path: Path) -> None:
    """The locked description is inherited by rsync; a release while a process still holds it
    must leave the lock held (an unlock would free it for a second sync). Proven to fail with
    filelock's own release (``LOCK_UN`` before the close): remove ``_FlockLock._release`` and
    the lock is free while the child still runs."""
    lock = SyncLock(str(tmp_path))
    assert lock.try_acquire() and lock.fd is not None
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        pass_fds=[lock.fd],
    )
    try:
        lock.release()
        assert lock.fd is None
        assert not _can_lock(tmp_path / "lock"), "released while rsync still held the lock"
        assert not SyncLock(str(tmp_path)).try_acquire()
    finally:
        child.communicate(timeout=10)
    assert _can_lock(tmp_path / "lock")
    again = SyncLock(str(tmp_path))
    assert again.try_acquire()
    again.release()


def test_the_lock_file_is_created_private_and_a_link_or_open_file_is_refused(
    tmp_path: Path,
) -> None:
    lock = SyncLock(str(tmp_path))
    assert lock.try_acquire()
    assert (tmp_path / "lock").stat().st_mode & 0o777 == 0o600
    lock.release()
    (tmp_path / "lock").chmod(0o644)  # others could open it, and hold it
    with pytest.raises(LockFileError, match="private"):
        SyncLock(str(tmp_path)).try_acquire()
    assert (tmp_path / "lock").stat().st_mode & 0o777 == 0o644  # refused, not "fixed"
    (tmp_path / "lock").unlink()
    target = tmp_path / "precious"
    target.write_text("kept\n")
    (tmp_path / "lock").symlink_to(target)
    with pytest.raises(LockFileError, match="cannot open the lock"):
        SyncLock(str(tmp_path)).try_acquire()
    assert target.read_text() == "kept\n"  # filelock's open would truncate what a link names


def test_filelock_is_the_lock(tmp_path: Path) -> None:
    """What another program using filelock on the same file sees: held, then free."""
    lock = SyncLock(str(tmp_path))
    assert lock.try_acquire()
    other = filelock.FileLock(str(tmp_path / "lock"), mode=0o600)
    with pytest.raises(filelock.Timeout):
        other.acquire(blocking=False)
    lock.release()
    with other.acquire(blocking=False):
        assert not SyncLock(str(tmp_path)).try_acquire()
