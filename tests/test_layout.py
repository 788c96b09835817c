"""Every module of syncd is under the import contracts' rules: either pure (its feature's
decisions: the pure contract's source modules, which import no I/O library and none of syncd's
I/O modules) or one of syncd's I/O modules (that contract's list of them, which the
cross-feature contracts draw from). Only the command line (``syncd.cli``, on top of all, its
own contracts), ``syncd.__main__`` and the packages' maps (docstrings that import nothing)
stand outside. A new module not listed fails here, so none escapes the rules.

Proven to fail: with ``syncd.monitor.snapshot`` left out of the pure list (as it was), and
with a module planted at ``syncd/monitor/planted.py``, the test named each."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]
PURE_CONTRACT = "syncd: each feature's pure modules decide without I/O"


def _contract() -> dict[str, list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    [pure] = [c for c in contracts if c["name"].startswith(PURE_CONTRACT)]
    return pure  # type: ignore[no-any-return]


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((ROOT / "syncd").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _under(name: str, listed: list[str]) -> bool:
    return any(name == m or name.startswith(f"{m}.") for m in listed)


def _imports_nothing(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return not any(isinstance(n, ast.Import | ast.ImportFrom) for n in ast.walk(tree))


def _outside(name: str, path: Path) -> bool:
    """The command line, __main__, and a package's map (imports nothing)."""
    if _under(name, ["syncd.cli", "syncd.__main__"]):
        return True
    return path.name == "__init__.py" and _imports_nothing(path)


def unclassified(modules: dict[str, Path], pure: list[str], shell: list[str]) -> list[str]:
    return [
        name
        for name, path in modules.items()
        if not _outside(name, path) and not _under(name, pure) and not _under(name, shell)
    ]


def test_every_module_of_syncd_is_pure_or_listed_as_io() -> None:
    contract = _contract()
    pure = contract["source_modules"]
    shell = [m for m in contract["forbidden_modules"] if m.startswith("syncd.")]
    assert unclassified(_modules(), pure, shell) == []


def test_no_module_is_both_and_every_listed_module_exists() -> None:
    contract = _contract()
    pure = contract["source_modules"]
    shell = [m for m in contract["forbidden_modules"] if m.startswith("syncd.")]
    modules = _modules()
    assert [m for m in shell if _under(m, pure)] == []
    assert [m for m in [*pure, *shell] if m not in modules] == []


def test_a_new_module_is_caught(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text('"""A module no list names."""\n\nimport sqlite3\n')
    modules = {**_modules(), "syncd.monitor.planted": planted}
    contract = _contract()
    shell = [m for m in contract["forbidden_modules"] if m.startswith("syncd.")]
    assert unclassified(modules, contract["source_modules"], shell) == ["syncd.monitor.planted"]
