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


def test_clientside_imports_only_the_standard_library_pushwire_and_filelock() -> None:
    """filelock is the one dependency: the zipapp carries it (scripts/build_zipapp.py)."""
    allowed = set(sys.stdlib_module_names) | {"clientside", "pushwire", "filelock", "__future__"}
    bad = {f: names - allowed for f, names in _imports("clientside").items() if names - allowed}
    assert not bad, f"clientside must run on a bare mirror host: {bad}"


def test_pushwire_imports_only_the_standard_library() -> None:
    allowed = set(sys.stdlib_module_names) | {"pushwire"}
    bad = {f: names - allowed for f, names in _imports("pushwire").items() if names - allowed}
    assert not bad, f"pushwire is shared by syncd and the mirror client: {bad}"


def _build(tmp_path: Path, name: str) -> Path:
    out = tmp_path / name
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_zipapp.py"), str(out)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out


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
                "import sys; sys.path.insert(0, sys.argv[1]); import clientside, pushwire; "
                "import clientside.locking, filelock; "
                "print(clientside.__file__); print(pushwire.__file__); print(filelock.__file__)",
                str(first),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert probe.returncode == 0, probe.stderr
        lines = probe.stdout.splitlines()
        assert len(lines) == 3 and all(line.startswith(str(first)) for line in lines), lines


@pytest.mark.skipif(not PY39.exists(), reason="Python 3.9 is only on machines with pyenv's 3.9")
def test_clientside_compiles_on_python39() -> None:
    out = subprocess.run(
        [str(PY39), "-m", "compileall", "-q", str(ROOT / "clientside"), str(ROOT / "pushwire")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def _module_graph(packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Return module -> the modules of `packages` it imports (at any depth of its code)."""
    files = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for package in packages
        for p in (ROOT / package).rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets.update(f"{node.module}.{a.name}" for a in node.names)
                targets.add(node.module)
        graph[module] = {t for t in targets if t in files and t != module}
    for module in graph:  # a package's __init__ is imported first: not an edge of its own
        graph[module] -= {m for m in graph if module.startswith(m + ".")}
    return graph


def test_the_client_has_no_import_circles() -> None:
    graph = _module_graph(("clientside", "pushwire"))
    assert "clientside.push" in graph and "clientside.core.args" in graph
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path[path.index(module) :], module))
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, (*path, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())
