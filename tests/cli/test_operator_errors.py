"""The publisher's set-up errors: each one line naming the problem and the fix (a missing state
directory, a missing key file, a mistyped mirror name or inventory key).

Each test was proven to fail on the code before its fix (run against the previous commit): the
state directory was not created (`unable to open database file`), the key's path was printed
twice with the raw errno text, and no "did you mean" was given.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from devtools.harness import account, sshkeys
from devtools.harness.binaries import require
from devtools.harness.documents import LAB_INVENTORY
from syncd.cli import app
from syncd.hints import closest, did_you_mean
from syncd.sqlite import StoreError, open_db

ROOT = Path(__file__).resolve().parent.parent.parent
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE4g3v7tDPFq4GeL5Gm5cBVJzvL7xiqsC6kdjrC6Ldqp"
runner = CliRunner()
INVENTORY = LAB_INVENTORY + (
    '[[mirrors]]\nname = "clamav.example.org"\nhost = "192.0.2.1"\ncountry = "PL"\n'
    f'admins = ["Jan <jan@example.org>"]\nhost_keys = ["{KEY}"]\n'
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _lines(output: str) -> list[str]:
    return [line for line in output.strip().splitlines() if line.startswith("syncd: ")]


def test_a_state_directory_that_does_not_exist_is_created(home: Path) -> None:
    """publishing.md's `state = "/var/lib/syncd/state.sqlite"` on a fresh host: the directory
    is made (mode 0750) and the record opened; config check says it will be created."""
    state = home / "var" / "lib" / "syncd" / "state.sqlite"
    (home / "syncd.toml").write_text(f'state = "{state}"\n')
    check = runner.invoke(app, ["config", "check", "--config", str(home / "syncd.toml")])
    assert check.exit_code == 0, check.output
    assert f"state: {state}: writable (created by the first publish)" in check.output
    open_db(state).close()  # what publish, monitor and dns do first
    assert state.is_file() and (state.parent.stat().st_mode & 0o777) == 0o750


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p.write_text("x"), "is not a directory: set state= (or --state)"),
        (lambda p: p.mkdir(), "is a directory: set state= (or --state) to a file in it"),
    ],
)
def test_a_state_path_that_cannot_be_a_database_is_one_line(
    home: Path, make: object, expected: str
) -> None:
    blocker = home / "blocker"
    make(blocker)  # type: ignore[operator]
    state = blocker / "state.sqlite" if blocker.is_file() else blocker
    (home / "syncd.toml").write_text(f'state = "{state}"\n')
    check = runner.invoke(app, ["config", "check", "--config", str(home / "syncd.toml")])
    assert check.exit_code == 2
    (line,) = _lines(check.output)
    assert expected in line, line
    with pytest.raises(StoreError) as err:
        open_db(state)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_a_missing_key_file_is_one_line_naming_the_path_once(home: Path) -> None:
    inv = home / "mirrors.toml"
    inv.write_text(INVENTORY)
    missing = home / "keys" / "pusher"
    args = ["--inventory", str(inv), "--key", str(missing), "--state", "s.db"]
    result = runner.invoke(app, ["publish", *args, "--expect", "daily=1"])
    assert result.exit_code == 2
    (line,) = _lines(result.output)
    assert line.count(str(missing)) == 1 and "Errno" not in line, line
    assert (
        "does not exist: give the pusher's private key with --key, or key= "
        "(or a [[sources]] key=) in syncd.toml" in line
    )


def test_publish_to_a_mistyped_mirror_hints_at_the_closest_name(home: Path) -> None:
    inv = home / "mirrors.toml"
    inv.write_text(INVENTORY)
    key = sshkeys.generate_keypair(home / "pusher", "test").private
    args = ["--inventory", str(inv), "--key", str(key), "--state", "s.db"]
    result = runner.invoke(
        app, ["publish", *args, "--expect", "daily=1", "--mirror", "clamav.exmaple.org"]
    )
    assert result.exit_code == 2, result.output
    (line,) = _lines(result.output)
    assert "not in the inventory: clamav.exmaple.org: did you mean 'clamav.example.org'?" in line
    assert "see 'syncd mirrors list'" in line


def test_a_mistyped_inventory_key_is_named_with_the_one_meant(home: Path) -> None:
    inv = home / "mirrors.toml"
    inv.write_text(INVENTORY.replace("country", "countyr"))
    result = runner.invoke(app, ["config", "check", "--inventory", str(inv)])
    assert result.exit_code == 2
    (line,) = _lines(result.output)
    assert "unknown key 'countyr': did you mean 'country'? rename or remove it" in line, line
    assert "missing key" not in line


def test_a_mistyped_config_key_is_named_with_the_one_meant(home: Path) -> None:
    (home / "syncd.toml").write_text('invetory = "mirrors.toml"\n')
    result = runner.invoke(app, ["config", "check", "--config", str(home / "syncd.toml")])
    assert result.exit_code == 2
    (line,) = _lines(result.output)
    assert "unknown key 'invetory': did you mean 'inventory'? rename or remove it" in line


NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz.-", min_size=6, max_size=30)


@given(st.lists(NAMES, min_size=1, max_size=20, unique=True), st.data())
def test_a_hint_names_only_a_known_name_and_finds_a_one_letter_slip(
    known: list[str], data: st.DataObject
) -> None:
    """Any word: the hint, if any, is one of the known names. A known name with one letter
    dropped: some known name is suggested."""
    word = data.draw(NAMES)
    match = closest(word, known)
    assert match is None or match in known
    assert (did_you_mean(word, known) == "") is (match is None)
    name = data.draw(st.sampled_from(known))
    i = data.draw(st.integers(0, len(name) - 1))
    assert closest(name[:i] + name[i + 1 :], known) is not None


def test_a_directory_the_user_cannot_write_gives_the_command_that_makes_it(
    tmp_path: Path,
) -> None:
    """As a user who may not write the parent (as /var/lib is for anyone but root): one line
    with the `install -d` that makes the directory. Run as the harness's unprivileged account
    when the tests run as root (root may write anywhere), else as ourselves on a 0555 parent.
    (Proven to fail before the fix: the previous open_db said only "cannot open the state
    database ...: unable to open database file", run as that account.)"""
    parent = tmp_path / "varlib"
    parent.mkdir()
    state = parent / "syncd" / "state.sqlite"
    # a copy of the package the account can read wherever the checkout lives
    src = tmp_path / "src"
    shutil.copytree(ROOT / "syncd", src / "syncd", ignore=shutil.ignore_patterns("__pycache__"))
    probe = (
        f"import sys\nsys.path.insert(0, {str(src)!r})\nfrom pathlib import Path\n"
        "from syncd.sqlite import StoreError, open_db\n"
        "try:\n    open_db(Path(sys.argv[1]))\nexcept StoreError as err:\n    print(err)\n"
    )
    user = account.mirror_account()
    if os.geteuid() == 0:
        account.make_traversable(parent)
        for path in [src, *src.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        parent.chmod(0o755)  # root's, not the account's to write
        # the distribution's python3, which the account can run (-I: no environment)
        argv = [require("runuser"), "-u", user.name, "--", "/usr/bin/python3", "-I", "-c", probe]
    else:
        parent.chmod(0o555)
        argv = [sys.executable, "-I", "-c", probe]
    proc = subprocess.run(
        [*argv, str(state)], capture_output=True, text=True, timeout=60, check=False
    )
    parent.chmod(0o755)
    assert proc.stdout.strip() == (
        f"cannot create the state database {state}: {parent} is not writable by {user.name}: "
        f"run: sudo install -d -o {user.name} -m 750 {state.parent} (or set state= to a path "
        f"{user.name} can write)"
    ), proc.stdout + proc.stderr
    assert not state.parent.exists()
