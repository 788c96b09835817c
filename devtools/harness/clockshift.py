"""The shifted clock that date-sensitive suites run under (scripts/test: libfaketime at +400
days and -1 day), carried to every server the harness starts.

libfaketime's LD_PRELOAD reaches child processes by itself (sshd, rsync, nginx, the client).
BIND cannot run under it: named is linked with jemalloc, which hangs in libfaketime's start-up
(libfaketime issue #130, no fix upstream). For named the harness swaps libfaketime for
``timeshift.c``, built here with gcc: the same offset on the wall clock by raw syscall, nothing
that can recurse. TSIG proves both clocks agree: BIND refuses an update signed more than 300 s
away from its own time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

SHIFT_VAR = "PUSHSYNC_CLOCK_SHIFT_S"  # set by scripts/test beside libfaketime's FAKETIME


def shift_s() -> int | None:
    """The shift the suite runs under, in seconds; None on the real clock."""
    value = os.environ.get(SHIFT_VAR)
    return int(value) if value and "FAKETIME" in os.environ else None


@cache
def _shim() -> Path:
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise RuntimeError("a shifted clock for named needs gcc: apt-get install gcc")
    out = Path(tempfile.mkdtemp(prefix="pushsync-timeshift-")) / "timeshift.so"
    source = Path(__file__).with_name("timeshift.c")
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    subprocess.run(
        [gcc, "-shared", "-fPIC", "-O2", "-o", str(out), str(source)],
        check=True,
        env=env,
        capture_output=True,
        timeout=120,
    )
    return out


def env_without_libfaketime() -> dict[str, str]:
    """The environment for a server libfaketime cannot run: the same shift through the shim
    when the suite runs shifted, else the environment as it is."""
    env = dict(os.environ)
    if shift_s() is None:
        return env
    preload = [p for p in env.get("LD_PRELOAD", "").split(":") if p and "faketime" not in p]
    env["LD_PRELOAD"] = ":".join([str(_shim()), *preload])
    for key in list(env):
        if key.startswith("FAKETIME"):
            del env[key]
    return env


def env_real_clock() -> dict[str, str]:
    """The environment for a server that must run on the real clock even in a shifted suite:
    no libfaketime, no shim. For a BIND secondary or cache: under the shim they arm their
    timers (a refresh after NOTIFY, a forwarded query's wait) on wall-clock deadlines the kernel
    compares with the real clock, so a deadline 400 days ahead never comes. What the tests read
    of them (serials, records, TTLs counted down) does not depend on their own date."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKETIME") and k != SHIFT_VAR}
    preload = [p for p in env.get("LD_PRELOAD", "").split(":") if p and "faketime" not in p]
    if preload:
        env["LD_PRELOAD"] = ":".join(preload)
    else:
        env.pop("LD_PRELOAD", None)
    return env
