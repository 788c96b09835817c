"""The release-to-served benchmark's tiered contender really makes a second wave: at a small N,
with real sshd mirrors, real rsync daemons and one hub, the hub's daemon serves the others and
every mirror serves the release, and the record's propagation agrees with the disks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def served(tmp_path: Path, *args: str) -> dict[str, Any]:
    """Run the benchmark at N=4 with one hub on real sshd mirrors; return its JSON."""
    out = tmp_path / "served.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.served",
            *("--n", "4", "--hubs", "1", "--via", "sshd", "--timeout", "120"),
            *args,
            *("--out", str(out)),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc


def test_the_tiered_contender_pulls_through_its_hub(tmp_path: Path) -> None:
    doc = served(tmp_path, "--contenders", "syncd-balanced", "syncd-tiered", "--check-propagation")
    runs = {r["contender"]: r for r in doc["runs"]}
    for run in runs.values():
        assert run["served"] == 4 and run["failures"] == 0, run
        # the record's propagation (syncd releases's code) against the disks: the same four
        # mirrors, none timed before its file landed, every quantile its own mirrors' rank
        # (a record later than the bound is the machine's load, not a miscount)
        check = run["propagation"]
        assert check["record_served"] == check["disk_served"] == 4, check
        assert [f for f in check["findings"] if "later" not in f] == [], check["findings"]
    assert runs["syncd-balanced"]["bytes_by_source"]["hubs"] == 0
    tiered = runs["syncd-tiered"]["bytes_by_source"]
    # of 4 mirrors (weights 1:1:1) the hub takes its share, and is itself served by a source
    per_mirror = sum(runs["syncd-balanced"]["bytes_by_source"].values()) / 4
    assert tiered["hubs"] >= 0.9 * per_mirror
    assert tiered["rsync1.clamav.net"] + tiered["rsync2.clamav.net"] >= 0.9 * per_mirror
    assert doc["setup"][0]["hubs"]["count"] == 1


def test_a_late_hub_hands_its_second_wave_to_the_sources_after_hub_wait(tmp_path: Path) -> None:
    """The hub's own pull is held to ~20 s (--late-hub-s); with hub_wait 2 s its second wave
    does not wait for it: every other mirror is served from a source long before the hub."""
    doc = served(tmp_path, "--late-hub-s", "20", "--hub-wait", "2", "--contenders", "syncd-tiered")
    (run,) = doc["runs"]
    assert run["served"] == 4 and run["failures"] == 0, run
    assert run["bytes_by_source"]["hubs"] == 0  # nobody pulled from the late hub
    late = doc["setup"][0]["hubs"]["late_hub"]
    assert late["pull_s"] == 20
    assert run["last_served"][-1]["mirror"] == late["name"]  # the hub itself is served last
    assert run["t100_but_late_hub_s"] is not None
    assert run["t100_but_late_hub_s"] < 0.6 * run["t100_s"]
