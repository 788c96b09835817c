"""One publisher per run: an flock held on ``<record>.runs/<run_id>.lock`` for as long as a
``syncd publish`` works on that run. The kernel drops it when the process ends, however it
ends, so a lock that can be taken is a run nobody works on: a run the record still calls
``running`` then was interrupted (killed, or its last write to the record failed).

The lock file names the holder's pid for the error a second publisher of the run is given.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from pathlib import Path

from pushwire.request import RUN_ID_PATTERN
from syncd.errors import EXIT_TEMPFAIL, SyncdError, UsageError

_RUN_ID = re.compile(RUN_ID_PATTERN)
_TRIES = 5  # a holder that unlinks its file as we open it: take the new one (bounded)


class RunBusy(SyncdError, RuntimeError):
    """Another syncd works on this run; the message names its pid."""

    exit_code = EXIT_TEMPFAIL


def lock_path(record: Path, run_id: str) -> Path:
    """Where run `run_id`'s lock lives; raise UsageError for an id no run can have (one that
    would name a path elsewhere, say)."""
    if not _RUN_ID.fullmatch(run_id):
        raise UsageError(f"run id {run_id[:80]!r} must match {RUN_ID_PATTERN}: see 'syncd status'")
    return record.with_name(f"{record.name}.runs") / f"{run_id}.lock"


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = int(path.read_text(encoding="ascii").strip() or "0")
        if pid > 0:
            return f"pid {pid}"
    return "another process"


@contextlib.contextmanager
def hold_run(record: Path, run_id: str) -> Iterator[None]:
    """Hold run `run_id`'s lock for the block; raise RunBusy when another process holds it,
    SyncdError when the lock file cannot be made (a full disk, say)."""
    path = lock_path(record, run_id)
    try:
        path.parent.mkdir(mode=0o700, exist_ok=True)
    except OSError as err:
        raise SyncdError(f"cannot make {path.parent}: {err.strerror}") from None
    fd = -1
    for _ in range(_TRIES):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as err:
            raise SyncdError(f"cannot open the run lock {path}: {err.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunBusy(
                f"run {run_id} is being published by {_holder(path)}: wait for it to end "
                f"(see 'syncd runs show {run_id}')"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path, follow_symlinks=False).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # its holder ended and unlinked it meanwhile: lock the file there now
        fd = -1
    if fd < 0:
        raise RunBusy(f"run {run_id}: its lock file keeps changing: try again")
    with contextlib.suppress(OSError):  # the pid is for messages only
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # while still held: whoever opened it retries on the new file
        os.close(fd)


def run_alive(record: Path, run_id: str) -> bool:
    """Return whether a process holds run `run_id`'s lock now (it is being published)."""
    if not _RUN_ID.fullmatch(run_id):
        return False
    try:
        fd = os.open(lock_path(record, run_id), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def shown_state(record: Path, run_id: str, state: str) -> str:
    """The state to show for a run the record calls `state`: ``interrupted`` for a run still
    ``running`` that no process works on."""
    if state == "running" and not run_alive(record, run_id):
        return "interrupted"
    return state
