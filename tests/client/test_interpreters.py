"""The zipapp a mirror installs, run under Python 3.9 (the oldest supported) and ours."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devtools.harness.cvd import write_release
from tests.client.conftest import PY39, R1, Mirror, fresh_mtime

INTERPRETERS = [pytest.param(sys.executable, id="current")] + (
    [pytest.param(str(PY39), id="python3.9")] if PY39.exists() else []
)


@pytest.mark.parametrize("python", INTERPRETERS)
def test_zipapp_syncs_under(
    python: str, mirror: Mirror, source_tree: Path, client_zipapp: Path
) -> None:
    def run(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, "-I", str(client_zipapp), "--config", str(mirror.config), R1],
            env={"PATH": "/usr/bin:/bin", "SSH_ORIGINAL_COMMAND": command},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    import json

    first = run("sync run-id=py")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["status"] == "ok"
    fresh_mtime(*write_release(source_tree, 28040).values())
    second = json.loads(run("expect-daily=28040").stdout)
    assert second["status"] == "ok" and second["databases"]["daily"]["version"] == 28040
    assert json.loads(run("version").stdout)["client_version"]
    assert run("sync; id").returncode == 64
