"""The distribution's shape: what the mirror client may import, and its zipapp. (Which package
may import which is in pyproject's import-linter contracts, checked by scripts/test.)"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.harness.client import build_zipapp

ROOT = Path(__file__).resolve().parent.parent
PY39 = Path("/root/.pyenv/versions/3.9.18/bin/python3.9")


def _imports(package: str) -> dict[str, set[str]]:
    """Return module file -> top-level names of everything it imports (absolute imports)."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_clientside_imports_only_stdlib_and_filelock() -> None:
    allowed = set(sys.stdlib_module_names) | {"filelock", "clientside", "__future__"}
    bad = {f: names - allowed for f, names in _imports("clientside").items() if names - allowed}
    assert not bad, f"clientside must run on a bare mirror host: {bad}"


def test_zipapp_builds_reproducibly_and_runs_isolated(tmp_path: Path) -> None:
    first, second = build_zipapp(tmp_path / "a.pyz"), build_zipapp(tmp_path / "b.pyz")
    assert first.read_bytes() == second.read_bytes()
    assert os.access(first, os.X_OK)
    interpreters = [sys.executable] + ([str(PY39)] if PY39.exists() else [])
    for python in interpreters:
        # -I: no user site, no PYTHONPATH, no cwd on sys.path: only what is inside the archive
        out = subprocess.run(
            [python, "-I", str(first), "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert out.returncode == 0, out.stderr
        assert "clam-clientsync" in out.stdout
        probe = subprocess.run(
            [
                python,
                "-I",
                "-c",
                "import sys; sys.path.insert(0, sys.argv[1]); import filelock, clientside; "
                "print(filelock.__file__)",
                str(first),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert probe.returncode == 0, probe.stderr
        assert probe.stdout.startswith(str(first))


@pytest.mark.skipif(not PY39.exists(), reason="Python 3.9 is only on machines with pyenv's 3.9")
def test_clientside_compiles_on_python39() -> None:
    out = subprocess.run(
        [str(PY39), "-m", "compileall", "-q", str(ROOT / "clientside")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
