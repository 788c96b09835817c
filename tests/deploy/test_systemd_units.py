"""The systemd units in deploy/systemd/, installed into a temporary root laid out as
deploy/README.md says: `systemd-analyze verify` finds nothing wrong (ExecStart resolves in the
root), `systemd-analyze security --offline` rates every service OK or better, and the units
keep the rules of the layout (StateDirectory, optional paths, Persistent= with OnCalendar=).
No systemd as PID 1 is needed: both commands read unit files offline."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from configparser import ConfigParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from syncd.cli import app

ROOT = Path(__file__).resolve().parent.parent.parent
UNITS = ROOT / "deploy" / "systemd"
VENV_BIN = "/opt/syncd/bin"
SYSTEM_UNITS = Path("/usr/lib/systemd/system")  # sysinit.target and the rest verify needs


def analyze() -> str:
    path = shutil.which("systemd-analyze")
    assert path, "systemd-analyze is missing: run scripts/setup (Debian package systemd)"
    return path


def units(suffix: str = "") -> list[Path]:
    found = sorted(
        p for p in UNITS.glob(f"syncd-*{suffix}") if p.suffix in {".service", ".timer", ".path"}
    )
    assert found
    return found


def parse(path: Path) -> ConfigParser:
    parser = ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def lines(path: Path, key: str) -> list[str]:
    return [ln.split("=", 1)[1] for ln in path.read_text().splitlines() if ln.startswith(f"{key}=")]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A host root as a fresh install leaves it: the system's own units, ours in
    /etc/systemd/system, and an executable where the venv's syncd will be."""
    top = tmp_path_factory.mktemp("root")
    shutil.copytree(SYSTEM_UNITS, top / SYSTEM_UNITS.relative_to("/"), symlinks=True)
    ours = top / "etc" / "systemd" / "system"
    ours.mkdir(parents=True)
    for unit in units():
        shutil.copy(unit, ours / unit.name)
    syncd = top / VENV_BIN.lstrip("/") / "syncd"
    syncd.parent.mkdir(parents=True)
    syncd.write_text("#!/bin/sh\nexit 0\n")
    syncd.chmod(0o755)
    return top


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [analyze(), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_units_verify_against_the_installed_layout(root: Path) -> None:
    names = [u.name for u in units()]
    done = run("verify", f"--root={root}", "--man=no", *names)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    # and without the venv's syncd, verify says so: the check is not vacuous
    (root / VENV_BIN.lstrip("/") / "syncd").rename(root / "syncd.away")
    try:
        missing = run("verify", f"--root={root}", "--man=no", "syncd-monitor.service")
    finally:
        (root / "syncd.away").rename(root / VENV_BIN.lstrip("/") / "syncd")
    assert missing.returncode != 0
    assert f"Command {VENV_BIN}/syncd is not executable" in missing.stderr


@pytest.mark.parametrize("unit", [u.name for u in units(".service")])
def test_every_service_rates_ok_or_better(root: Path, unit: str) -> None:
    done = run("security", "--offline=true", f"--root={root}", "--threshold=49", unit)
    assert done.returncode == 0, done.stdout + done.stderr
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d) (\w+)", done.stdout)
    assert m, done.stdout
    assert float(m[1]) <= 4.9 and m[2] in {"OK", "SAFE", "PERFECT"}, m[0]


@pytest.mark.parametrize("unit", units(".service"), ids=lambda p: p.name)
def test_services_follow_the_layout(unit: Path) -> None:
    service = parse(unit)["Service"]
    assert service["User"] == service["Group"] == "syncd"
    assert service["StateDirectory"] == "syncd"
    for entry in " ".join(lines(unit, "ReadWritePaths")).split():
        # the record is the StateDirectory; anything else is optional on a given host
        assert entry.startswith("-"), f"{unit.name}: ReadWritePaths {entry} must be optional (-)"
    argv = shlex.split(service["ExecStart"])
    assert argv[0] == f"{VENV_BIN}/syncd"
    # the command line is one syncd accepts
    result = CliRunner().invoke(app, [*argv[1:], "--help"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("unit", units(".timer"), ids=lambda p: p.name)
def test_persistent_timers_are_calendar_timers(unit: Path) -> None:
    timer = parse(unit)["Timer"]
    if timer.get("Persistent") == "true":
        assert "OnCalendar" in timer, f"{unit.name}: Persistent= only acts on OnCalendar="
    assert parse(unit)["Install"]["WantedBy"] == "timers.target"
    service = unit.with_suffix(".service")
    assert service.exists()
    done = run("calendar", timer["OnCalendar"])
    assert done.returncode == 0, done.stderr


def test_path_unit_starts_publish() -> None:
    path = parse(UNITS / "syncd-publish.path")["Path"]
    assert path["Unit"] == "syncd-publish.service"
    assert path["PathChanged"].startswith("/srv/clamav/release/")


MEMORY_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


@pytest.mark.parametrize("unit", units(".service"), ids=lambda p: p.name)
def test_services_bound_memory_and_tasks(unit: Path) -> None:
    """Whatever the mirrors answer, a run cannot take the push host's memory or its process
    table: MemoryMax= well above the measured peaks (~75 MB for a monitor pass against 200
    hostile mirrors, ~110 MB for a publish to 1000), below what a shared host can give;
    TasksMax= above the threads syncd starts (under 100), far below systemd's default."""
    service = parse(unit)["Service"]
    m = re.fullmatch(r"([0-9]+)([KMG])", service.get("MemoryMax", ""))
    assert m, f"{unit.name}: MemoryMax= must be set, in K, M or G"
    limit = int(m[1]) * MEMORY_UNITS[m[2]]
    assert 512 << 20 <= limit <= 4 << 30, f"{unit.name}: MemoryMax={m[0]}"
    tasks = service.get("TasksMax", "")
    assert tasks.isdigit() and 128 <= int(tasks) <= 1024, f"{unit.name}: TasksMax={tasks}"
