"""The decisions live in pure modules: no processes, sockets, clocks or filesystem there."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
PURE = ["config", "cvd", "rsyncplan", "publishplan"]
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


PUSHWIRE = sorted(p.stem for p in (ROOT / "pushwire").glob("*.py"))


@pytest.mark.parametrize("name", PURE)
def test_core_module_is_pure(name: str) -> None:
    _check_pure(ROOT / "clientside" / f"{name}.py", name)


@pytest.mark.parametrize("name", PUSHWIRE)
def test_pushwire_module_is_pure(name: str) -> None:
    _check_pure(ROOT / "pushwire" / f"{name}.py", name)


def _check_pure(path: Path, name: str) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not {a.name.split(".")[0] for a in node.names} & FORBIDDEN_MODULES
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.module.split(".")[0] not in FORBIDDEN_MODULES
            if node.module.startswith("clientside."):
                assert node.module.split(".")[1] in PURE, node.module
        elif isinstance(node, ast.Call):
            fn = node.func
            called = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            assert called not in FORBIDDEN_CALLS, f"{name}: {called}()"


def test_modules_stay_small() -> None:
    for path in (ROOT / "clientside").glob("*.py"):
        assert len(path.read_text().splitlines()) <= 400, path.name
