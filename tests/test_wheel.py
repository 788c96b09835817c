"""What the wheel ships: the packages pyproject names, every module of them, and nothing of the
development tooling (tests, benchmarks, devtools), which no shipped module may import."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEVELOPMENT = {"tests", "benchmarks", "devtools"}
# a module named in a string: importlib.import_module(f"tests.harness.{name}")
NAMED = re.compile(r"^(tests|benchmarks|devtools)(\.|$)")


def _shipped_packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages: list[str] = config["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    return packages


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    # the build backend pyproject names, through its PEP 517 hook, as any installer calls it
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from hatchling.build import build_wheel; build_wheel(sys.argv[1])",
            str(out),
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
        timeout=120,
    )
    (built,) = out.glob("pushsync-*.whl")
    return zipfile.ZipFile(built)


def test_wheel_holds_exactly_the_shipped_packages(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == set(_shipped_packages())
    shipped = {n for n in names if n.endswith(".py")}
    in_tree = {
        p.relative_to(ROOT).as_posix()
        for package in _shipped_packages()
        for p in (ROOT / package).rglob("*.py")
    }
    assert shipped == in_tree


def test_no_shipped_module_imports_development_tooling(wheel: zipfile.ZipFile) -> None:
    bad = []
    for name in wheel.namelist():
        if not name.endswith(".py"):
            continue
        for node in ast.walk(ast.parse(wheel.read(name), name)):
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported = [node.module]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                imported = [node.value] if NAMED.match(node.value) else []
            else:
                continue
            bad += [f"{name}: {m}" for m in imported if m.split(".")[0] in DEVELOPMENT]
    assert not bad, f"the wheel must run without a checkout: {bad}"
