"""scripts/demo's main job, as a user runs it: it must tell the truth on any date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def test_demo_ends_with_every_mirror_fresh(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "devtools.demo", "--mirrors", "2", "--workdir", str(work)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "2 of 2 mirrors serve the release" in out
    assert "the monitor finds 2 of 2 mirrors fresh" in out
    assert "heartbeat" in out and "removed" not in out
    # its own release is whole: 30 cdiffs and their signs, nothing to warn about
    assert "lacks" not in out and "warning" not in out.lower(), out
    assert (work / ".pushsync-demo").is_file()
    # then one mirror in trouble, on its own page; the other stays fresh
    assert "the monitor finds mirror2.demo.test old: timestamp is 30.0 h old" in out, out
    page = (work / "status" / "mirrors" / "mirror2.demo.test.html").read_text()
    assert "old" in page and f"its page: {work / 'status' / 'mirrors'}" in out
    overview = (work / "status" / "index.html").read_text()
    assert overview.count('class="fresh"') >= 1 and 'class="old"' in overview, overview
    assert "1970" not in overview and "removed" not in overview.split("<table")[-1]


def test_the_simulated_fleet_ends_as_planned_and_says_so(tmp_path: Path) -> None:
    """Proven to fail before the fix: the planned faults made the demo exit 1 without a word
    about the plan or the simulated run's record."""
    work = tmp_path / "demo"
    argv = ["--mirrors", "1", "--workdir", str(work), "--simulated", "40"]
    proc = subprocess.run(
        [sys.executable, "-m", "devtools.demo", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "a planned fault mix (" in out and "planned outcome: " in out
    assert "every simulated mirror ended as planned" in out
    record = work / "simulated" / "state.sqlite"
    assert record.is_file() and f"the simulated run's record: {record}" in out
