"""Reading the web server's access log (``ACCESS_LOG=``) since the last report.

The position (device, inode, offset) is kept in STATE_DIR, outside the served tree, and moved
only past whole lines counted; what is decided lives in ``core.accesslog``. A read is bounded
in bytes (MAX_BYTES per sync, the rest carried to the next) and in time (MAX_SECONDS), and
nothing about the log ever fails a sync: its problems are the report's warnings.
"""

import json
import logging
import os
import stat
import time
from typing import Callable, List, Optional, Tuple

from clientside.core.accesslog import (
    ROTATED_SUFFIX,
    FileFacts,
    Position,
    Read,
    Scanner,
    Tally,
    plan_reads,
)
from clientside.fsutil import atomic_write, read_small
from pushwire.report import Traffic

log = logging.getLogger("clam-clientsync")

STATE_NAME = "access-log.json"
MAX_BYTES = 64 * 1024 * 1024
MAX_SECONDS = 10.0
CHUNK = 1024 * 1024


class NotALog(Exception):
    """ACCESS_LOG (or its .1) is no regular file: a directory, a device, a FIFO."""


def _facts(path: str) -> Optional[FileFacts]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return FileFacts(st.st_dev, st.st_ino, st.st_size)


def _load(state_dir: str, path: str) -> Tuple[Optional[Position], Optional[str]]:
    """The saved position and the time of the last report, for this ACCESS_LOG."""
    raw = read_small(os.path.join(state_dir, STATE_NAME), 64 * 1024)
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("path") != path:
        return None, None
    try:
        pos = Position(
            int(data["dev"]), int(data["ino"]), max(0, int(data["offset"])), bool(data["skipping"])
        )
    except (KeyError, TypeError, ValueError):
        return None, None
    since = data.get("reported_at")
    return pos, since if isinstance(since, str) else None


def _save(state_dir: str, path: str, pos: Position, reported_at: str) -> None:
    data = {
        "path": path,
        "dev": pos.dev,
        "ino": pos.ino,
        "offset": pos.offset,
        "skipping": pos.skipping,
        "reported_at": reported_at,
    }
    atomic_write(os.path.join(state_dir, STATE_NAME), json.dumps(data).encode())


class _Budget:
    def __init__(self, max_bytes: int, max_seconds: float, clock: Callable[[], float]) -> None:
        self.max_bytes, self.max_seconds = max_bytes, max_seconds
        self.left = max_bytes
        self.until = clock() + max_seconds
        self.clock = clock

    def spent(self) -> bool:
        return self.left <= 0 or self.clock() >= self.until


def _read_one(
    path: str, facts: FileFacts, read: Read, tally: Tally, budget: _Budget, *, rotated: bool
) -> Tuple[Position, bool]:
    """Count `path` from `read.offset`; return where it stopped and whether it read it all.
    The file is checked to be the one planned (an inode replaced meanwhile is read next time)."""
    scanner = Scanner(tally, skipping=read.skipping)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO never blocks
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise NotALog(f"{path} is not a regular file")
        if (st.st_dev, st.st_ino) != (facts.dev, facts.ino):
            return Position(facts.dev, facts.ino, read.offset, read.skipping), False
        fh.seek(read.offset)
        end = st.st_size  # lines written after this look are the next report's
        at = read.offset
        while at < end and not budget.spent():
            data = fh.read(min(CHUNK, end - at, budget.left))
            if not data:
                break
            at += len(data)
            budget.left -= len(data)
            scanner.feed(data)
        whole = at >= end
        if whole and rotated:
            scanner.end_of_file()
    pos = Position(st.st_dev, st.st_ino, read.offset + scanner.consumed, scanner.skipping)
    return pos, whole


def read_traffic(
    state_dir: str,
    path: str,
    *,
    reported_at: str,
    max_bytes: int = MAX_BYTES,
    max_seconds: float = MAX_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> Tuple[Optional[Traffic], List[str]]:
    """Count what `path` logged since the last report; return the report's ``traffic`` (None
    when nothing could be read) and warnings. Never raises for the log's sake."""
    try:
        budget = _Budget(max_bytes, max_seconds, clock)
        return _read_traffic(state_dir, path, reported_at, budget)
    except Exception as exc:  # never fail a sync because of the log
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        log.warning("access log %s: %s", path, why)
        return None, [f"access log {path}: not counted: {why}"]


def _read_traffic(
    state_dir: str,
    path: str,
    reported_at: str,
    budget: "_Budget",
) -> Tuple[Optional[Traffic], List[str]]:
    saved, since = _load(state_dir, path)
    current, rotated_facts = _facts(path), _facts(path + ROTATED_SUFFIX)
    reads, warning = plan_reads(saved, current, rotated_facts)
    warnings = [f"access log {path}: {warning}"] if warning else []
    if not reads:
        return None, warnings
    tally = Tally()
    pos = saved
    complete = True
    for read in reads:
        rotated = read.which == "rotated"
        facts = rotated_facts if rotated else current
        assert facts is not None
        pos, whole = _read_one(
            path + ROTATED_SUFFIX if rotated else path, facts, read, tally, budget, rotated=rotated
        )
        if not whole:
            complete = False
            break
    if not complete:
        warnings.append(
            f"access log {path}: more than this sync may read ({budget.max_bytes} bytes, "
            f"{budget.max_seconds:g} s): the rest is counted by the next"
        )
    if pos is not None:
        _save(state_dir, path, pos, reported_at)
    return tally.as_report(since=since, complete=complete), warnings
