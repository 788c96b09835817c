"""Waiting for rsync: woken by a pidfd when it exits, Popen's polling where there is none."""

from __future__ import annotations

import os
import subprocess

import pytest

from clientside import runner


def _no_pidfd(pid: int) -> int:
    raise OSError("pidfd_open: not on this kernel")


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "polling"])
def test_wait_returns_the_exit_code_or_times_out(
    pidfd: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not pidfd:
        monkeypatch.setattr(os, "pidfd_open", _no_pidfd)
    done = subprocess.Popen(["/bin/sh", "-c", "exit 3"])
    assert runner.wait_exit(done, 30) == 3
    slow = subprocess.Popen(["/bin/sleep", "30"])
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            runner.wait_exit(slow, 0.05)
    finally:
        slow.kill()
        slow.wait()
