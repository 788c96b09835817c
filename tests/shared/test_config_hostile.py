"""``syncd config check`` refuses what publish and monitor could not use, naming the field:
host names the resolver refuses (an empty IDNA label), control characters in hosts and URLs,
a newline in a mail address (a header injection, and a mail that can never be sent)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from typer.testing import CliRunner

from syncd.cli import app
from syncd.httpcheck import client as mirrorhttp
from syncd.inventory.model import host_problem

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq0gZ7wI0nR0b7eQq0k9v3bq2yqLx1m6y1c7J8Vb3aT"


def _mirror(**fields: str) -> str:
    values = {
        "name": '"m.example.org"',
        "host": '"m.example.org"',
        "country": '"PL"',
        "host_keys": f'["{KEY}"]',
        **fields,
    }
    return "[[mirrors]]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())


def _check(tmp_path: Path, inventory: str, extra: str = "") -> tuple[int, str]:
    inv = tmp_path / "inventory.toml"
    inv.write_text(inventory)
    cfg = tmp_path / "syncd.toml"
    cfg.write_text(f'inventory = "{inv}"\n' + extra)
    result = CliRunner().invoke(app, ["config", "check", "--config", str(cfg)])
    return result.exit_code, result.output


def test_a_good_inventory_passes(tmp_path: Path) -> None:
    code, out = _check(tmp_path, _mirror(admins='["Jo <jo@example.org>"]'))
    assert code == 0, out


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"host": '"mirror..example.org"'}, "host", "label empty or too long"),
        ({"host": '"mirror.example.org\\u0000evil"'}, "host", "control character"),
        ({"host": '"mirror\\u0007.example.org"'}, "host", "control character"),
        ({"http": '"http://mirror..example.org"'}, "http", "label empty or too long"),
        ({"http": '"http://m.example.org/\\u0000"'}, "http", "not an http(s) URL"),
        ({"admins": '["Jo <jo@example.org>\\nBcc: all@example.org"]'}, "admins", "newline"),
        ({"notify": '["ops@example.org\\r\\n"]'}, "notify", "control character"),
    ],
)
def test_config_check_rejects_what_commands_cannot_use(
    tmp_path: Path, fields: dict[str, str], field: str, says: str
) -> None:
    code, out = _check(tmp_path, _mirror(**fields))
    assert code == 2, out
    [line] = [line for line in out.splitlines() if line.startswith("syncd:")]
    assert f"mirror 'm.example.org': field {field!r}" in line and says in line, line
    assert "\x00" not in out and "\x07" not in out


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ('[monitor]\nteam = ["team@example.org\\nBcc: x@example.org"]\n', "monitor.team"),
        ('[monitor.smtp]\nsender = "m@example.org\\r\\nBcc: x@example.org"\n', "sender"),
        ('[monitor.smtp]\nhost = "smtp..example.org"\n', "host"),
    ],
)
def test_config_check_rejects_bad_monitor_addresses(tmp_path: Path, table: str, field: str) -> None:
    code, out = _check(tmp_path, _mirror(), table)
    assert code == 2, out
    assert field in out, out


def test_the_http_check_refuses_such_a_host_before_resolving() -> None:
    """The adapters use the same function: a name the resolver would raise UnicodeError on
    is the mirror's failed check, not a crash."""
    assert host_problem("mirror..example.org") is not None
    with pytest.raises(mirrorhttp.CheckFailed, match="label empty or too long"):
        trio.run(mirrorhttp.targets, "http://mirror..example.org", "db.pl.clamav.net")
