"""The sync lock (``filelock``'s ``flock`` lock, never blocking) and the "update required" mark."""

import os
import stat
from typing import Optional

import filelock

from clientside.fsutil import atomic_write

LOCK_NAME = "lock"
MARK_NAME = "update-required"


class LockFileError(OSError):
    """The lock file is not a private regular file of this user: it is not used."""


def _check_private(fd: int, path: str) -> None:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise LockFileError(0, "the lock is not a private (600) file of this user", path)


class _FlockLock(filelock.UnixFileLock):
    """filelock's ``flock`` lock, released by closing its descriptor only, never by
    ``LOCK_UN``: the locked file description is shared with rsync (see SyncLock), and an unlock
    would end the lock for every holder of it, a still running rsync included."""

    def _release(self) -> None:
        fd = self._context.lock_file_fd
        self._context.lock_file_fd = None
        if fd is not None:
            os.close(fd)

    @property
    def fd(self) -> Optional[int]:
        return self._context.lock_file_fd


class SyncLock:
    """A non-blocking ``flock`` on ``STATE_DIR/lock``, taken with ``filelock``.

    The locked file description is handed to rsync (``fd``, the only descriptor it inherits) so
    that the lock stays held for as long as any rsync we started runs, even when this process is
    killed. It is released only by closing our descriptor, never by ``LOCK_UN``: an unlock would
    end the lock for every holder of the description, a still running rsync included; a close
    ends it once no process holds the description any more. The runner kills and waits for
    rsync's whole process group before a round ends, so a close after a round is the release.
    """

    def __init__(self, state_dir: str) -> None:
        self.path = os.path.join(state_dir, LOCK_NAME)
        self.mark_path = os.path.join(state_dir, MARK_NAME)
        # thread_local=False: one sync, one thread; the descriptor is the process's
        self._lock = _FlockLock(self.path, mode=0o600, thread_local=False, blocking=False)

    def try_acquire(self) -> bool:
        """Return True when we now hold the lock, False when another run holds it.

        Raise LockFileError when the lock file is a link, not a regular file, not ours, or
        open to others (who could hold it and so make every push answer ``queued``). This is
        checked before filelock opens the file (which follows a link and would make a file of
        ours private instead of refusing it) and again on the descriptor it locked."""
        if self._lock.is_locked:
            return True
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise LockFileError(
                exc.errno, f"cannot open the lock: {exc.strerror}", self.path
            ) from None
        try:
            _check_private(fd, self.path)
        finally:
            os.close(fd)  # never locked: closing it ends no lock
        try:
            self._lock.acquire(blocking=False)
        except filelock.Timeout:
            return False
        except OSError as exc:
            raise LockFileError(
                exc.errno, f"cannot open the lock: {exc.strerror}", self.path
            ) from None
        locked = self._lock.fd  # held: not None
        try:
            if locked is not None:
                _check_private(locked, self.path)  # the file it opened is the one checked above
        except BaseException:
            self._lock.release(force=True)
            raise
        return self._lock.is_locked

    def release(self) -> None:
        """Close our descriptor (see the class)."""
        self._lock.release(force=True)

    @property
    def fd(self) -> Optional[int]:
        """The locked file descriptor (to pass to rsync), or None when not held."""
        return self._lock.fd

    def set_mark(self, run_id: Optional[str]) -> None:
        """Leave the "update required" mark for the run holding the lock."""
        atomic_write(self.mark_path, ((run_id or "-") + "\n").encode())

    def take_mark(self) -> bool:
        """Remove the mark; return whether it was set."""
        try:
            os.unlink(self.mark_path)
        except FileNotFoundError:
            return False
        return True

    def mark_set(self) -> bool:
        return os.path.lexists(self.mark_path)
