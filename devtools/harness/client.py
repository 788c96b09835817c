"""Run the mirror client as a mirror runs it: the zipapp, under the system's Python.

The project's virtual environment lives under the developer's (or root's) home, which the
mirror account usually cannot enter; mirrors run ``clam-clientsync.pyz`` with the distribution's
``python3`` instead, and so do the tests that go through sshd.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from devtools.harness.account import make_traversable

ROOT = Path(__file__).resolve().parent.parent.parent


def system_python() -> str:
    """Return the distribution's python3 (what a mirror has), falling back to ours."""
    for candidate in ("/usr/bin/python3", shutil.which("python3")):
        if candidate and Path(candidate).exists():
            return candidate
    return sys.executable


def build_client_zipapp(directory: Path) -> Path:
    """Build ``clam-clientsync.pyz`` into `directory` (made reachable by the mirror account)."""
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / "clam-clientsync.pyz"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_zipapp.py"), str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    make_traversable(directory)
    return out


def client_command(pyz: Path) -> list[str]:
    """Return the argv prefix that runs the client zipapp in isolated mode."""
    return [system_python(), "-I", str(pyz)]
