"""The decisions live in pure modules: no processes, sockets, clocks or filesystem in
``clientside/core/`` and ``pushwire/``, every module of both checked (no hand-kept list)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
PURE_DIRS = [ROOT / "clientside" / "core", ROOT / "pushwire"]
PURE = sorted(p for d in PURE_DIRS for p in d.glob("*.py"))
FORBIDDEN_MODULES = {
    "subprocess",
    "socket",
    "time",
    "os",
    "shutil",
    "filelock",
    "signal",
    "tempfile",
    "logging",
    "pathlib",
    "syncd",
}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "open"}


def test_every_pure_module_is_found() -> None:
    names = {str(p.relative_to(ROOT)) for p in PURE}
    assert {"clientside/core/config.py", "clientside/core/authkeys.py"} <= names
    assert {"pushwire/request.py", "pushwire/report.py", "pushwire/cvd.py"} <= names


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_is_pure(path: Path) -> None:
    name = str(path.relative_to(ROOT))
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            assert not {a.name.split(".")[0] for a in node.names} & FORBIDDEN_MODULES, name
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.module.split(".")[0] not in FORBIDDEN_MODULES, name
            if node.module.startswith("clientside"):  # only the core itself, never the shell
                assert node.module.startswith("clientside.core"), f"{name}: {node.module}"
        elif isinstance(node, ast.Call):
            fn = node.func
            called = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            assert called not in FORBIDDEN_CALLS, f"{name}: {called}()"


def test_modules_stay_small() -> None:
    for path in [*(ROOT / "clientside").rglob("*.py"), *(ROOT / "pushwire").rglob("*.py")]:
        assert len(path.read_text().splitlines()) <= 400, path.name
