"""Fault toolbox: process faults at a chosen moment, a full disk, a source tree that changes
under a sync, and the observers that check invariants while faults happen.

- ``ProcessTrigger``: wait (in a thread) for a process matching a predicate, then signal it
  (SIGKILL, or SIGSTOP for a while then SIGCONT).
- ``tiny_tmpfs``: a small tmpfs mounted for a test and always unmounted (root only).
- ``fill_disk`` / ``ChurningFile``: make a filesystem full; rewrite a file in place, slowly.
- ``CvdReaders``: HTTP readers polling nginx that validate every CVD they receive.
- ``RsyncOverlap``: samples rsync processes and records two writing one tree at once.
- ``leaked_processes``, ``held_locks``, ``secret_hits``: the after-scenario counts.

The network faults (delay, throttle, stall, drop, refuse) are ``faultproxy.FaultProxy``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

HEADER_SIZE = 512


# -- process faults ---------------------------------------------------------------------------


def cmdline(proc: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return " ".join(proc.cmdline())
    return ""


def find_processes(match: Callable[[psutil.Process], bool]) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if match(proc):
                found.append(proc)
    return found


@dataclass
class ProcessTrigger:
    """Signal the first process matching `match` once it has run `delay_s` (SIGSTOP: for
    `stop_s`, then SIGCONT); with `victim`, signal that pid instead when the match appears
    (kill the rsync daemon at the moment a client starts pulling). Runs in a thread;
    ``fired`` says what it hit."""

    match: Callable[[psutil.Process], bool]
    victim: int | None = None
    sig: int = signal.SIGKILL
    delay_s: float = 0.0
    stop_s: float = 1.0
    timeout_s: float = 20.0
    fired: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> ProcessTrigger:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            procs = find_processes(self.match)
            if procs:
                if self.victim is not None and not psutil.pid_exists(self.victim):
                    return
                target = procs[0] if self.victim is None else psutil.Process(self.victim)
                if self._stop.wait(self.delay_s):
                    return
                with contextlib.suppress(psutil.Error):
                    desc = f"{target.pid} {cmdline(target)[:120]}"
                    target.send_signal(self.sig)
                    self.fired = desc
                    if self.sig == signal.SIGSTOP:
                        self._stop.wait(self.stop_s)
                        target.send_signal(signal.SIGCONT)
                return
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


# -- disk and source-tree faults ----------------------------------------------------------------


@contextlib.contextmanager
def tiny_tmpfs(path: Path, size: str = "1m") -> Iterator[Path]:
    """Mount a tmpfs of `size` at `path` and unmount it afterwards, whatever happens.

    Raise OSError when mounting is not permitted here (not root, no CAP_SYS_ADMIN).
    """
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise OSError(f"cannot mount a tmpfs at {path}: {done.stderr.strip()}")
    try:
        yield path
    finally:
        for args in (["umount", str(path)], ["umount", "-l", str(path)]):
            if subprocess.run(args, capture_output=True, check=False).returncode == 0:
                break


def is_mounted(path: Path) -> bool:
    target = str(path.resolve())
    return any(p.mountpoint == target for p in psutil.disk_partitions(all=True))


def fill_disk(path: Path, leave: int = 0) -> Path:
    """Write ``path/filler`` until the filesystem is full (less `leave` bytes); return it."""
    filler = path / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb") as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError:
            pass
    if leave:
        size = filler.stat().st_size
        os.truncate(filler, max(0, size - leave))
    return filler


class ChurningFile:
    """Rewrite `path` in place, slowly and repeatedly, with `final` bytes: a release landing
    non-atomically while mirrors sync. Stops with `final` fully written."""

    def __init__(self, path: Path, final: bytes, *, chunks: int = 8, pause_s: float = 0.05):
        self.path, self.final, self.chunks, self.pause_s = path, final, chunks, pause_s
        self.rewrites = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        step = max(1, len(self.final) // self.chunks)
        while not self._stop.is_set():
            with self.path.open("r+b" if self.path.exists() else "wb") as f:
                f.truncate(0)
                for i in range(0, len(self.final), step):
                    f.write(self.final[i : i + step])
                    f.flush()
                    time.sleep(self.pause_s)
            self.rewrites += 1

    def __enter__(self) -> ChurningFile:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.path.write_bytes(self.final)


# -- observers ----------------------------------------------------------------------------------


def cvd_problem(data: bytes) -> str | None:
    """Given a whole CVD as served, return what is wrong with it, or None."""
    if len(data) < HEADER_SIZE:
        return f"{len(data)} bytes: shorter than a header"
    try:
        fields = data[:HEADER_SIZE].decode("ascii").rstrip(" ").split(":")
    except UnicodeDecodeError:
        return "header not ASCII"
    if fields[0] != "ClamAV-VDB" or len(fields) < 8:
        return "not a ClamAV-VDB header"
    if hashlib.md5(data[HEADER_SIZE:]).hexdigest() != fields[5].lower():
        return f"MD5 mismatch (version {fields[2]}, {len(data)} bytes)"
    return None


class CvdReaders:
    """Poll every `urls` base for every database in a loop (one thread), as freshclam would,
    and validate every CVD received in full. ``bad`` lists what was wrong, ``checked`` counts."""

    def __init__(self, urls: Iterable[str], databases: Iterable[str] = ("daily", "main")):
        self.urls, self.databases = list(urls), list(databases)
        self.checked = 0
        self.bad: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        headers = {"Host": "db.test.clamav.net", "User-Agent": "ClamAV/1.0.9"}
        with httpx.Client(trust_env=False, timeout=5, headers=headers) as client:
            while not self._stop.is_set():
                for base in self.urls:
                    for db in self.databases:
                        with contextlib.suppress(httpx.HTTPError):
                            resp = client.get(f"{base}/{db}.cvd")
                            if resp.status_code == 200:
                                self.checked += 1
                                problem = cvd_problem(resp.content)
                                if problem:
                                    self.bad.append(f"{base}/{db}.cvd: {problem}")
                time.sleep(0.005)

    def __enter__(self) -> CvdReaders:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def _rsync_writers(under: str) -> dict[str, list[int]]:
    """Return destination -> top-level rsync pids writing below `under`."""
    procs = find_processes(lambda p: p.name() == "rsync" and under in cmdline(p))
    pids = {p.pid for p in procs}
    out: dict[str, list[int]] = {}
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            if proc.ppid() in pids:
                continue  # rsync's own receiver/generator fork
            argv = proc.cmdline()
            if not argv:
                continue  # exiting
            dest = argv[-1].rstrip("/")
            out.setdefault(dest, []).append(proc.pid)
    return out


class RsyncOverlap:
    """Sample rsync processes writing below `under`; record any tree two write at once."""

    def __init__(self, under: Path, period_s: float = 0.02):
        self.under, self.period_s = str(under), period_s
        self.samples = 0
        self.overlaps: list[str] = []
        self.seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for dest, pids in _rsync_writers(self.under).items():
                self.seen.update(pids)
                if len(pids) > 1:
                    self.overlaps.append(f"{dest}: rsync pids {pids}")
            self.samples += 1
            self._stop.wait(self.period_s)

    def __enter__(self) -> RsyncOverlap:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


# -- after-scenario counts ----------------------------------------------------------------------


def descendants(pids: Iterable[int]) -> set[int]:
    out: set[int] = set()
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            out.update(c.pid for c in psutil.Process(pid).children(recursive=True))
    return out


def leaked_processes(root: Path, servers: Iterable[int]) -> list[str]:
    """Processes that mention `root` or descend from the long-lived `servers` (sessions,
    clients, rsyncs, our own children), other than those servers themselves."""
    keep = set(servers)
    suspects = descendants([*keep, os.getpid()]) | {
        p.pid for p in find_processes(lambda p: str(root) in cmdline(p))
    }
    out = []
    for pid in sorted(suspects - keep - {os.getpid()}):
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{pid} {cmdline(proc)[:160]}")
    return out


def wait_no_leaks(root: Path, servers: Iterable[int], timeout_s: float) -> list[str]:
    """Wait up to `timeout_s` for stragglers (an orphaned rsync finishing) to end."""
    servers = list(servers)
    deadline = time.monotonic() + timeout_s
    while True:
        leaks = leaked_processes(root, servers)
        if not leaks or time.monotonic() > deadline:
            return leaks
        time.sleep(0.1)


def held_locks(paths: Iterable[Path]) -> list[str]:
    """Return the lock files among `paths` that some process still holds (flock)."""
    held = []
    for path in paths:
        if not path.exists():
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except BlockingIOError:
            held.append(str(path))
        finally:
            os.close(fd)
    return held


def secret_hits(
    secrets: Iterable[str], roots: Iterable[Path], texts: dict[str, str], allowed: set[Path]
) -> list[str]:
    """Return where any of `secrets` appears: in files under `roots` (except `allowed`) or in
    the named `texts` (outputs)."""
    needles = [s.encode() for s in secrets if s]
    hits = []
    for name, text in texts.items():
        hits += [f"{name}: {n.decode()[:6]}..." for n in needles if n in text.encode()]
    for root in roots:
        for dirpath, _, files in os.walk(root):
            for fname in files:
                path = Path(dirpath, fname)
                if path in allowed or path.is_symlink():
                    continue
                with contextlib.suppress(OSError):
                    data = path.read_bytes()
                    hits += [f"{path}: {n.decode()[:6]}..." for n in needles if n in data]
    return hits


def open_fds() -> int:
    return psutil.Process().num_fds()
