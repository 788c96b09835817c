"""The shifted-clock passes of scripts/test really shift the clock: of this process, of the
servers started under libfaketime, and of named through the harness's shim."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from devtools.harness.clockshift import env_without_libfaketime, shift_s

SLACK_S = 3600  # the real epoch was read when scripts/test started the pass


def _offset(now: float) -> float:
    return now - int(os.environ["PUSHSYNC_REAL_EPOCH"])


def test_the_shift_reaches_this_process_its_children_and_the_shim() -> None:
    shift = shift_s()
    if shift is None:
        pytest.skip("real clock: scripts/test runs this again under libfaketime")
    assert abs(_offset(time.time()) - shift) < SLACK_S
    child = subprocess.run(["date", "+%s"], capture_output=True, text=True, check=True)
    assert abs(_offset(int(child.stdout)) - shift) < SLACK_S  # libfaketime is inherited
    shimmed = subprocess.run(
        ["date", "+%s"], capture_output=True, text=True, check=True, env=env_without_libfaketime()
    )
    assert "faketime" not in env_without_libfaketime().get("LD_PRELOAD", "")
    assert abs(_offset(int(shimmed.stdout)) - shift) < SLACK_S  # the shim, as named gets it
