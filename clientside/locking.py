"""The sync lock (``filelock``, never blocking) and the "update required" mark."""

import os
from typing import Optional

import filelock

from clientside.fsutil import atomic_write

LOCK_NAME = "lock"
MARK_NAME = "update-required"


class SyncLock:
    """A non-blocking ``flock`` on ``STATE_DIR/lock``.

    The locked file description is handed to rsync (``fd``) so the lock stays held for as long
    as any rsync we started runs, even when this process is killed.
    """

    def __init__(self, state_dir: str) -> None:
        self.path = os.path.join(state_dir, LOCK_NAME)
        self.mark_path = os.path.join(state_dir, MARK_NAME)
        self._lock = filelock.FileLock(self.path, mode=0o600, thread_local=False)

    def try_acquire(self) -> bool:
        """Return True when we now hold the lock, False when another run holds it."""
        try:
            self._lock.acquire(timeout=0, blocking=False)
        except filelock.Timeout:
            return False
        return True

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release(force=True)

    @property
    def fd(self) -> Optional[int]:
        """The locked file descriptor (to pass to children), or None when not held."""
        # filelock keeps the descriptor in its context; there is no public accessor (3.19).
        fd = getattr(self._lock._context, "lock_file_fd", None)
        return fd if isinstance(fd, int) else None

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
        return os.path.exists(self.mark_path)
