"""Each problem doctor finds comes with a fix that names an action: the command to run or the
line to change, with paths quoted for the shell."""

from __future__ import annotations

import itertools
import shlex
from pathlib import Path

import pytest

from clientside.verbs.doctor import doctor


def fixes(home: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    assert doctor(str(config), str(home), None, []) == 1
    out = capsys.readouterr().out.splitlines()
    return {
        what.removeprefix("FAIL  "): fix.strip().removeprefix("fix: ")
        for what, fix in itertools.pairwise(out)
        if what.startswith("FAIL  ")
    }


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "it's home"  # a quote in the path: the fixes quote it for the shell
    (home / "etc").mkdir(parents=True)
    home.chmod(0o755)
    return home


def test_a_missing_config_says_to_run_setup(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = home / "etc" / "clam-clientsync.conf"
    found = fixes(home, config, capsys)
    fix = next(f for w, f in found.items() if w.startswith(f"config {config} is usable"))
    assert fix.startswith("'clam-clientsync setup' writes one to fill in")
    assert "fix the config line named" not in " ".join(found.values())


def test_a_broken_config_that_exists_says_to_edit_it(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not "no file yet" about a file that is there (it said so on the code before)."""
    config = home / "etc" / "clam-clientsync.conf"
    config.write_text("TO=$(rm -rf ~)\n")
    config.chmod(0o600)
    found = fixes(home, config, capsys)
    fix = next(f for w, f in found.items() if w.startswith(f"config {config} is usable"))
    assert fix.startswith(f"edit {shlex.quote(str(config))} at the line or key named above")
    assert "setup" not in fix and "no file yet" not in fix


def test_a_missing_to_says_how_to_create_it(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = home / "etc" / "clam-clientsync.conf"
    to = home / "public_html"
    config.write_text(f'TO="{to}"\nUNKNOWN_KEY=1\n')
    config.chmod(0o600)
    found = fixes(home, config, capsys)
    fix = next(f for w, f in found.items() if w.startswith(f"TO {to}"))
    assert fix.startswith(
        f"set TO= in {shlex.quote(str(config))} to the web server's document root"
    )
    assert fix.endswith(f"(create it with install -d -m 755 {shlex.quote(str(to))})")
    unknown = next(f for w, f in found.items() if "UNKNOWN_KEY" in w)
    assert unknown == f"remove or correct that line in {shlex.quote(str(config))}"
