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
    assert "heartbeat" in out and "removed" not in out and " old" not in out
    page = (work / "status" / "index.html").read_text()
    assert page.count('class="fresh"') >= 2, page
    assert "1970" not in page and "removed" not in page.split("<table")[-1]
