"""Running rsync: finding it and its version, then a new session, our own wall-clock deadline,
output captured and bounded. Whenever rsync's leader ends (by itself, by a signal, or by us), what
is left of its process group is killed and waited for before the caller goes on: a receiver that
outlived its leader would otherwise keep writing into staging."""

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import time
from typing import BinaryIO, Dict, List, NamedTuple, Optional, Sequence

from clientside.core import rsyncplan
from clientside.core.config import Config
from clientside.fsutil import atomic_write, read_small

OUTPUT_LIMIT = 256 * 1024
KILL_GRACE_S = 2.0
GROUP_TERM_S = 1.0  # a leftover receiver may remove its temporary file on SIGTERM
GROUP_KILL_S = 5.0
RSYNC_VERSION_CACHE = "rsync-version.json"


class RunResult(NamedTuple):
    exit_code: Optional[int]  # None when we killed it on the deadline
    output: str
    duration_s: float
    deadline_hit: bool
    group_survived: bool = False  # some process of rsync's group still ran when we gave up


def _tail(fh: BinaryIO, limit: int) -> str:
    fh.flush()
    size = fh.seek(0, os.SEEK_END)
    head = b""
    if size > limit:
        fh.seek(0)
        head = fh.read(limit // 4) + b"\n[... output truncated ...]\n"
        fh.seek(size - (limit - limit // 4))
    else:
        fh.seek(0)
    return (head + fh.read()).decode("utf-8", "replace")


def _kill_group(proc: "subprocess.Popen[bytes]") -> None:
    """Stop rsync's leader (SIGTERM, then SIGKILL) through its group, and reap it."""
    for sig, grace in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        return
    proc.wait()


def group_alive(pgid: int) -> bool:
    """Return whether a process of group ``pgid`` still runs.

    Zombies do not count: they hold no files and no lock, and an init that does not reap (as in
    some containers) may keep them for ever."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        names = os.listdir("/proc")
    except OSError:  # no /proc: the group exists, that is all we know
        return True
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
        fields = data[data.rfind(b")") + 2 :].split()
        if len(fields) >= 3 and fields[2] == str(pgid).encode() and fields[0] != b"Z":
            return True
    return False


def end_group(pgid: int) -> bool:
    """Kill what is left of process group ``pgid`` (SIGTERM, then SIGKILL) and wait, bounded,
    until none of it runs; return False when something still runs at the end."""
    for sig, wait_s in ((signal.SIGTERM, GROUP_TERM_S), (signal.SIGKILL, GROUP_KILL_S)):
        if not group_alive(pgid):
            return True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        until = time.monotonic() + wait_s
        while time.monotonic() < until:
            if not group_alive(pgid):
                return True
            time.sleep(0.01)
    return not group_alive(pgid)


def _unnamed_file(directory: str) -> BinaryIO:
    """Return a new file in ``directory`` that has no name, as tempfile.TemporaryFile makes it on
    Linux (``O_TMPFILE``), without importing tempfile (and random) on every push."""
    try:
        fd = os.open(directory, os.O_RDWR | os.O_TMPFILE | os.O_CLOEXEC, 0o600)
    except (AttributeError, OSError):  # no O_TMPFILE on this system or filesystem
        import tempfile

        return tempfile.TemporaryFile(dir=directory, prefix="rsync-out.")
    return os.fdopen(fd, "w+b")


def wait_exit(proc: "subprocess.Popen[bytes]", timeout: float) -> int:
    """Return ``proc``'s exit code once it exits; raise subprocess.TimeoutExpired at ``timeout``.

    ``Popen.wait(timeout)`` polls, sleeping up to 50 ms between looks: every push would notice
    rsync's exit that much late. A pidfd (Linux 5.3+, Python 3.9+) wakes us when it exits."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux, or an older kernel: Popen's polling
        return proc.wait(timeout=timeout)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(pidfd)
    return proc.wait()


def run(
    argv: Sequence[str],
    env: Dict[str, str],
    *,
    deadline_s: float,
    work_dir: str,
    pass_fds: Sequence[int] = (),
) -> RunResult:
    """Run ``argv`` in its own session with ``env`` only; kill its process group at the deadline.

    Whenever the leader ends, its group is killed and waited for (``end_group``) before this
    returns, so that nothing we started still writes. Only ``pass_fds`` are inherited.
    Output (stdout and stderr) goes to an unnamed file in ``work_dir``, not a pipe, so rsync does
    not die of a broken pipe if we are killed; the last part is returned.
    """
    started = time.monotonic()
    with _unnamed_file(work_dir) as out:
        proc = subprocess.Popen(
            list(argv),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
            close_fds=True,
            cwd="/",
        )
        deadline_hit = False
        exit_code: Optional[int]
        try:
            exit_code = wait_exit(proc, max(deadline_s, 0.001))
        except subprocess.TimeoutExpired:
            deadline_hit = True
            _kill_group(proc)
            exit_code = None
        except BaseException:
            _kill_group(proc)
            end_group(proc.pid)
            raise
        # the leader is reaped; its group (the receiver) may live on, e.g. after a SIGKILL of
        # the leader alone. While a member lives the group id cannot be reused.
        survived = not end_group(proc.pid)
        output = _tail(out, OUTPUT_LIMIT)
    return RunResult(exit_code, output, time.monotonic() - started, deadline_hit, survived)


def capture(argv: List[str], env: Dict[str, str], timeout_s: float = 5.0) -> Optional[str]:
    """Run a short command and return its stdout, or None when it fails to run."""
    try:
        done = subprocess.run(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.decode("utf-8", "replace")


def find_rsync(config: Optional[Config]) -> Optional[str]:
    """Return the rsync to run (``RSYNC=``, else the first on the safe PATH), or None."""
    if config is not None and config.rsync:
        return config.rsync if os.access(config.rsync, os.X_OK) else None
    return shutil.which("rsync", path=rsyncplan.SAFE_PATH)


def rsync_version(rsync: Optional[str], state_dir: Optional[str]) -> Optional[str]:
    """Return the installed rsync's version, cached per binary in the state directory."""
    if rsync is None:
        return None
    try:
        st = os.stat(rsync)
    except OSError:
        return None
    key = f"{rsync}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
    cache = os.path.join(state_dir, RSYNC_VERSION_CACHE) if state_dir else None
    if cache:
        raw = read_small(cache)
        try:
            cached = json.loads(raw) if raw else None
        except ValueError:
            cached = None
        if isinstance(cached, dict) and cached.get("key") == key:
            version = cached.get("version")
            return version if isinstance(version, str) else None
    version = rsyncplan.parse_version(
        capture([rsync, "--version"], rsyncplan.build_env("/", None)) or ""
    )
    if cache and version:
        with contextlib.suppress(OSError):
            atomic_write(
                cache, json.dumps({"key": key, "version": version}).encode(), durable=False
            )
    return version
