"""Fault toolbox: process faults at a chosen moment, a full disk, a source tree that changes
under a sync, and the observers that check invariants while faults happen.

- ``ProcessTrigger``: wait (in a thread) for a process matching a predicate, then signal it
  (SIGKILL, or SIGSTOP for a while then SIGCONT).
- ``tiny_tmpfs``: a small tmpfs mounted for a test and always unmounted (root only).
- ``fill_disk`` / ``ChurningFile``: make a filesystem full; rewrite a file in place, slowly.
- ``CvdReaders``: HTTP readers polling nginx that validate every CVD and timestamp they
  receive, and count a body cut short, a file gone after it was served, a version going back.
- ``RsyncOverlap``: samples rsync processes and records two writing one tree at once.
- ``leaked_processes``, ``tree_holders``, ``staging_leftovers``, ``held_locks``,
  ``secret_hits``: the after-scenario counts.

The network faults (delay, throttle, stall, drop, refuse) are ``faultproxy.FaultProxy``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
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
                if self.fired is not None or self.victim is not None:
                    return
                # the match ended before its delay ran out: wait for the next one (a retry, a
                # status poll) rather than leave the fault unfired
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


DATABASES = ("daily", "main", "bytecode")


@dataclass
class _Url:
    """What the readers know of one URL: reads begun and ended, the latest-begun read that has
    ended, the newest version a read that ended had seen, and whether one ever got it whole."""

    begun: int = 0
    reads: int = 0
    latest_ended: int = -1
    newest: int = -1
    served: bool = False


class CvdReaders:
    """`threads` HTTP readers polling every `urls` base, as freshclam would: each database's CVD
    (validated whole: header and MD5) and ``timestamp`` (one decimal number).

    A violation (in ``bad``) is a body that is not a whole CVD (or not a number), a body cut
    short (an ``httpx`` protocol or read error once the answer began), a 404 or other status for
    a file a read that ended earlier got whole, and a version (or timestamp) older than one a
    read that ended before this one began had seen. Connection and timeout errors are counted in
    ``errors`` (no fault here stops nginx). ``checked`` counts whole files read."""

    def __init__(
        self,
        urls: Iterable[str],
        databases: Iterable[str] = DATABASES,
        *,
        timestamp: bool = True,
        threads: int = 2,
    ):
        bases = list(urls)
        self.urls = [f"{base}/{db}.cvd" for base in bases for db in databases]
        self.urls += [f"{base}/timestamp" for base in bases if timestamp]
        self.checked = 0
        self.errors = 0
        self.bad: list[str] = []
        self._state = {url: _Url() for url in self.urls}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]

    def reads(self, url: str) -> int:
        """How many reads of `url` have ended (whatever they got)."""
        with self._cond:
            return self._state[url].reads

    def wait_reads(self, url: str, count: int, timeout_s: float = 5.0) -> bool:
        """Wait until `count` reads of `url` have ended; return whether they did in time."""
        with self._cond:
            return self._cond.wait_for(lambda: self._state[url].reads >= count, timeout_s)

    def wait_fresh_read(self, url: str, timeout_s: float = 5.0) -> bool:
        """Wait until a read of `url` that began after this call has ended; return whether one
        did in time (a test holds a planted bad state open this long)."""
        with self._cond:
            state = self._state[url]
            first = state.begun
            return self._cond.wait_for(lambda: state.latest_ended >= first, timeout_s)

    def _run(self, index: int) -> None:
        headers = {"Host": "db.test.clamav.net", "User-Agent": "ClamAV/1.0.9"}
        urls = self.urls[index:] + self.urls[:index]  # the threads start apart
        with httpx.Client(trust_env=False, timeout=5, headers=headers) as client:
            while not self._stop.is_set():
                for url in urls:
                    self._read(client, url)
                self._stop.wait(0.002)

    def _read(self, client: httpx.Client, url: str) -> None:
        with self._cond:
            state = self._state[url]
            floor, served_before = state.newest, state.served
            seq = state.begun
            state.begun += 1
        version: int | None = None
        problem: str | None = None
        whole = error = False
        try:
            with client.stream("GET", url) as resp:  # the answer has begun
                try:
                    body = resp.read()
                except httpx.HTTPError as err:
                    problem = (
                        f"body cut short (HTTP {resp.status_code}, {type(err).__name__}: {err})"
                    )
                else:
                    if resp.status_code == 200:
                        whole = True
                        version, problem = _served_version(url, body)
                    elif served_before:
                        problem = f"HTTP {resp.status_code} for a file served whole before"
        except httpx.HTTPError:  # no answer at all (connect, timeout, closed before a byte)
            error = True
        with self._cond:
            state.reads += 1
            state.latest_ended = max(state.latest_ended, seq)
            self.checked += whole
            self.errors += error
            if problem is None and version is not None:
                if version < floor:
                    problem = f"version went back: {version} after {floor}"
                state.newest = max(state.newest, version)
                state.served = True
            if problem is not None:
                self.bad.append(f"{url}: {problem}")
            self._cond.notify_all()

    def __enter__(self) -> CvdReaders:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)


def _served_version(url: str, body: bytes) -> tuple[int | None, str | None]:
    """Given a whole body served at `url`, return (its version, None) or (None, the problem)."""
    if url.endswith("/timestamp"):
        text = body.decode("ascii", "replace").strip()
        if not text.isdigit() or len(text) > 12:
            return None, f"timestamp {body[:40]!r} is not a number"
        return int(text), None
    problem = cvd_problem(body)
    if problem is not None:
        return None, problem
    version = body[:HEADER_SIZE].decode("ascii").split(":")[2]
    if not version.isdigit():
        return None, f"version field {version!r} is not a number"
    return int(version), None


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


REAP_WAIT_S = 1.0  # long enough to reap what is already exiting, too short to outlive a sync


def tree_holders(tree: Path, exclude: Iterable[int] = ()) -> list[str]:
    """Return the processes (other than `exclude` and this one) whose working directory or an
    open file lies under `tree`."""
    skip = {*exclude, os.getpid()}
    prefix = str(tree.resolve()) + os.sep
    out = []
    for proc in psutil.process_iter():
        if proc.pid in skip:
            continue
        with contextlib.suppress(psutil.Error):
            paths = [proc.cwd(), *(f.path for f in proc.open_files())]
            held = [p for p in paths if (p + os.sep).startswith(prefix)]
            if held and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{proc.pid} {cmdline(proc)[:120]} holds {held[0]}")
    return out


RSYNC_TEMP = re.compile(r"^\..+\.[A-Za-z0-9]{6}$")  # rsync's mkstemp name: .NAME.XXXXXX


def staging_leftovers(to: Path) -> list[str]:
    """Return what an rsync or the client left half done under `to` (the served tree, staging
    inside it): ``.~tmp~`` directories (``--delay-updates``), rsync's ``.NAME.XXXXXX`` temp files
    and the client's ``.clam-clientsync-tmp.*`` files."""
    found = []
    for dirpath, dirnames, filenames in os.walk(to):
        for name in [*dirnames, *filenames]:
            if (
                name == ".~tmp~"
                or RSYNC_TEMP.match(name)
                or name.startswith(".clam-clientsync-tmp.")
            ):
                found.append(os.path.join(dirpath, name))
    return sorted(found)


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
