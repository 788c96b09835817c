"""The command lines' help as a reader sees it, rendered at a fixed terminal width: the
[dns] and [monitor] tables named, metavars in capitals, `--version`, the client's real help,
and a missing syncd.toml that says where it was looked for."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from clientside import __version__ as client_version
from clientside.cli import main as client_main
from syncd import __version__
from syncd.cli import app

WIDTH = 100
runner = CliRunner()


def render(*args: str) -> str:
    result = runner.invoke(app, [*args, "--help"], prog_name="syncd", terminal_width=WIDTH)
    assert result.exit_code == 0, result.output
    return result.output


def commands() -> list[tuple[str, ...]]:
    """Every command and group of syncd, as argv prefixes (the lazy ones imported to list
    theirs)."""
    out: list[tuple[str, ...]] = [()]

    def walk(cmd: Any, ctx: typer.Context, path: tuple[str, ...]) -> None:
        for name in cmd.list_commands(ctx) if hasattr(cmd, "list_commands") else ():
            sub = cmd.get_command(ctx, name)
            out.append((*path, name))
            walk(sub, typer.Context(sub, parent=ctx, info_name=name), (*path, name))

    root = get_command(app)
    walk(root, typer.Context(root, info_name="syncd"), ())
    return out


@pytest.mark.parametrize("argv", commands(), ids=lambda a: " ".join(a) or "syncd")
def test_every_help_reads_as_plain_text(argv: tuple[str, ...]) -> None:
    text = render(*argv)
    assert text.startswith("Usage: syncd")
    # Typer's type labels and Rich's boxes are not what a reader wants
    assert not re.search(r"<(bool|path|str|int|float|list\[str\])>", text), text
    assert "╭" not in text and "{" not in text, text
    # a table name in brackets is text, not markup that vanishes
    assert not re.search(r"\b(has|with|in) ,", text), text
    assert max(len(line) for line in text.splitlines()) <= WIDTH


def test_table_names_survive() -> None:
    assert "when syncd.toml has [dns], update the rotation" in " ".join(render("publish").split())
    assert "configured in [monitor]" in " ".join(render("monitor").split())
    assert "Leave DNS alone even when [dns] is configured." in render("publish")


def test_publish_help_as_rendered() -> None:
    options = render("publish").split("Options:\n", 1)[1]
    assert options == (
        "  --inventory FILE     The mirrors' inventory TOML.\n"
        "  --key FILE           The pusher's private key (mode 600).\n"
        "  --state FILE         The SQLite record (default from syncd.toml).\n"
        "  --source-tree DIR    Read the release's versions from these CVDs.\n"
        "  --expect DB=VERSION  DB=VERSION, e.g. daily=28034 (overrides the tree).\n"
        "  --json               Print the result as JSON.\n"
        "  --resume RUN_ID      Finish run RUN_ID: only mirrors not ok.\n"
        "  --mirror NAME        Only this mirror (repeatable).\n"
        "  --no-dns             Leave DNS alone even when [dns] is configured.\n"
        "  --dry-run            Print the DNS changes the gate would make.\n"
        "  --config FILE        syncd.toml (default: ./etc, ~/.config/syncd, /etc/syncd, first"
        " found).\n"
        "  --help               Show this message and exit.\n"
    )


def test_arguments_are_named_in_capitals() -> None:
    text = render("mirrors", "show")
    assert "Usage: syncd mirrors show [OPTIONS] NAME\n" in text
    assert "  NAME  The mirror's name in the inventory.  [required]\n" in text


def test_version_option_and_command() -> None:
    for argv in (["--version"], ["version"]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 0, result.output
        assert result.output == f"{__version__}\n"


def test_missing_config_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2
    assert result.output.strip().startswith(
        "syncd: --state is required (or set 'state' in syncd.toml): no syncd.toml found: "
        f"looked for {tmp_path}/etc/syncd.toml, {tmp_path}/home/.config/syncd/syncd.toml, "
        "/etc/syncd/syncd.toml"
    )


def test_a_config_without_the_key_is_named(tmp_path: Path) -> None:
    cfg = tmp_path / "syncd.toml"
    cfg.write_text("[policy]\n")
    result = runner.invoke(app, ["status", "--config", str(cfg)])
    assert result.exit_code == 2
    assert f"(or set 'state' in syncd.toml): {cfg} sets none" in result.output


def test_client_help_is_more_than_a_usage_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert client_main(["--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: clam-clientsync [--config PATH] SOURCE")
    for part in ("--doctor", "SOURCE", "~/etc/clam-clientsync.conf", "TO=", "Exit codes: 0"):
        assert part in text
    assert len(text.splitlines()) > 10
    assert max(len(line) for line in text.splitlines()[1:]) <= WIDTH
    assert client_main(["--version"]) == 0
    assert capsys.readouterr().out == f"{client_version}\n"
