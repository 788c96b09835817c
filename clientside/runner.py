"""Running rsync: finding it and its version, then a new session, our own wall-clock deadline,
output captured and bounded."""

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
RSYNC_VERSION_CACHE = "rsync-version.json"


class RunResult(NamedTuple):
    exit_code: Optional[int]  # None when we killed it on the deadline
    output: str
    duration_s: float
    deadline_hit: bool


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
    for sig, grace in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            # the leader is gone; make sure nothing else of its group survives
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue
        return


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
            raise
        output = _tail(out, OUTPUT_LIMIT)
    return RunResult(exit_code, output, time.monotonic() - started, deadline_hit)


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
