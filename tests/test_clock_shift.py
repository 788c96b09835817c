"""The shifted-clock passes of scripts/test really shift the clock: of this process, of the
servers started under libfaketime, and of named through the harness's shim; the plain pass
keeps them in step with each other."""

from __future__ import annotations

import os
import subprocess
import time

from devtools.harness.clockshift import env_without_libfaketime, shift_s

SLACK_S = 3600  # the real epoch was read when scripts/test started the pass


# the plain pass has no real epoch from scripts/test: this process's clock is the real one
REAL_EPOCH = int(os.environ.get("PUSHSYNC_REAL_EPOCH", int(time.time())))


def _offset(now: float) -> float:
    return now - REAL_EPOCH


def test_the_shift_reaches_this_process_its_children_and_the_shim() -> None:
    found = shift_s()
    shift = 0 if found is None else found  # the plain pass: no shift anywhere
    assert abs(_offset(time.time()) - shift) < SLACK_S
    child = subprocess.run(["date", "+%s"], capture_output=True, text=True, check=True)
    assert abs(_offset(int(child.stdout)) - shift) < SLACK_S  # libfaketime is inherited
    shimmed = subprocess.run(
        ["date", "+%s"], capture_output=True, text=True, check=True, env=env_without_libfaketime()
    )
    assert "faketime" not in env_without_libfaketime().get("LD_PRELOAD", "")
    assert abs(_offset(int(shimmed.stdout)) - shift) < SLACK_S  # the shim, as named gets it
