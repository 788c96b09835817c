"""The command groups load when used: ``syncd --help`` lists every one from the registry
(`syncd.cli.COMMANDS`) without importing it, a light group's help loads nothing of the push,
DNS or the monitor, the registry's lines are the commands' own, and every group still runs
from the installed entry point (`python -m syncd`, a process of its own).

Proven to fail on the code before (every group imported by `syncd.cli`): run with that tree
first on PYTHONPATH, `syncd --help` loaded asyncssh, sqlite3 and syncd.publish.fanout, and
`syncd.cli` had no registry."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer

import syncd.cli
from syncd.cli import COMMANDS
from syncd.cli.groups import Listed

# What only a push, DNS or the monitor needs: never loaded to list the groups.
HEAVY = (
    "syncd.publish.fanout",
    "syncd.monitor.run",
    "syncd.dns.update",
    "asyncssh",
    "trio_asyncio",
    "sqlite3",
)

# Runs syncd's entry point with argv, then prints what it had imported as JSON on stderr's
# last line (its exit code is kept).
WRAPPER = """
import json, sys
sys.argv = ["syncd", *sys.argv[1:]]
try:
    from syncd.cli import main
    main()
    code = 0
except SystemExit as done:
    code = done.code
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
sys.exit(code)
"""


def loaded(*argv: str) -> tuple[set[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, *argv], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stderr.splitlines()[-1])), done.stdout


@pytest.mark.parametrize("argv", [("--help",), ("--version",), ("keys", "--help")])
def test_help_and_a_light_group_load_nothing_heavy(argv: tuple[str, ...]) -> None:
    modules, out = loaded(*argv)
    assert [m for m in HEAVY if m in modules] == []
    cli = {m for m in modules if m.startswith("syncd.cli.")}
    assert cli == {"syncd.cli.groups"} | ({"syncd.cli.keys"} if argv[0] == "keys" else set())
    if argv == ("--help",):
        for entry in COMMANDS:
            assert f"\n  {entry.name} " in out, out


def test_the_command_is_imported_before_start_up_is_frozen() -> None:
    """What a command imports lives as long as the process: frozen with the rest, the cyclic
    collector never walks it (`syncd.cli.main`)."""
    code = (
        "import gc, sys\n"
        "seen = []\n"
        "gc.freeze = lambda: seen.append('syncd.cli.keys' in sys.modules)\n"
        "sys.argv = ['syncd', 'keys', '--help']\n"
        "from syncd.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(seen, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stderr.splitlines()[-1] == "[True, True]", done.stderr


@pytest.mark.parametrize("entry", COMMANDS, ids=lambda e: e.name)
def test_the_registry_line_is_the_commands_own(entry: syncd.cli.Lazy) -> None:
    real = entry.load()
    assert real.name == entry.name
    first = " ".join((real.help or "").split("\n\n")[0].split())
    assert first.startswith(entry.help), (entry.help, first)
    listed = Listed(entry)
    for limit in range(1, 400):
        assert listed.get_short_help_str(limit) == real.get_short_help_str(limit), limit
    assert not real.hidden and not real.deprecated and real.short_help is None


def test_every_command_module_is_registered() -> None:
    """A group added to syncd/cli/ without a line in the registry would not be reachable."""
    registered = {(e.module, e.attr) for e in COMMANDS}
    found = set()
    for info in pkgutil.iter_modules(syncd.cli.__path__, "syncd.cli."):
        module = importlib.import_module(info.name)
        for attr, value in vars(module).items():
            if (
                isinstance(value, typer.Typer)
                and value.registered_commands + value.registered_groups
            ):
                found.add((info.name, attr))
    assert found - {("syncd.cli", "app")} == registered
    names = [e.name for e in COMMANDS]
    assert len(set(names)) == len(names)
    assert "version" not in names  # the root's own command


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "empty.toml").write_text("[policy]\n")
    (tmp_path / "keys").mkdir()
    return tmp_path


# Every command, run for real up to the check that needs what empty.toml does not set: the
# exit code and the one line show its own code ran (and its errors are mapped as before).
RUNS = {
    "publish": (["publish"], 2, "syncd: --inventory is required"),
    "status": (["status"], 2, "syncd: --state is required"),
    "heartbeat": (["heartbeat"], 2, "syncd: --source-tree is required"),
    "config": (["config", "check"], 0, ""),
    "mirrors": (["mirrors", "list"], 2, "syncd: --inventory is required"),
    "runs": (["runs", "show", "r1"], 2, "syncd: --state is required"),
    "releases": (["releases"], 2, "syncd: --state is required"),
    "keys": (["keys", "verify", "--keys-dir", "keys"], 2, "syncd keys: keys/pushers.toml"),
    "monitor": (["monitor"], 2, "syncd: --inventory is required"),
    "dns": (["dns", "render"], 2, "syncd: no [dns] table in syncd.toml"),
}


@pytest.mark.parametrize("entry", COMMANDS, ids=lambda e: e.name)
def test_every_group_runs_from_the_entry_point(entry: syncd.cli.Lazy, workdir: Path) -> None:
    argv, code, line = RUNS[entry.name]
    if entry.name != "keys":
        argv = [*argv, "--config", "empty.toml"]
    env = {**os.environ, "HOME": str(workdir)}
    done = subprocess.run(
        [sys.executable, "-m", "syncd", *argv],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == code, done.stderr
    assert done.stderr.startswith(line), done.stderr
    assert "Traceback" not in done.stderr


def test_a_mistyped_group_is_still_suggested() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "syncd", "mirorrs"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "No such command 'mirorrs'. Did you mean 'mirrors'?" in done.stderr
