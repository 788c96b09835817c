"""The command groups: `SyncdGroup`, the one place where an error becomes syncd's exit code,
and `LazyGroup`, the root of ``syncd``, where each command and command group is registered by
name with the line the root's list shows, its module imported only when it runs (or its own
help is asked for): ``syncd --help`` and a light command load neither the push (asyncssh,
trio), nor DNS (dnspython), nor the monitor, nor the configuration's models."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
import typer.main
from typer.core import TyperArgument, TyperCommand, TyperGroup

from pushwire.request import RequestError
from syncd.errors import EXIT_USAGE, SyncdError

# Errors of the wire code shared with the mirror client (which knows nothing of SyncdError),
# and what syncd exits with when one reaches the operator.
WIRE_ERRORS: dict[type[Exception], int] = {RequestError: EXIT_USAGE}


def exit_code_of(err: Exception) -> int | None:
    """The exit code for an error the operator is to read; None for a bug (a traceback)."""
    if isinstance(err, SyncdError):
        return err.exit_code
    return next((code for cls, code in WIRE_ERRORS.items() if isinstance(err, cls)), None)


class SyncdGroup(TyperGroup):
    """A command group whose commands' errors end as one line on stderr and the error's exit
    code (`exit_code_of`), never as a traceback."""

    prefix = "syncd"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in self.commands.values():
            name_metavars(command)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as err:
            code = exit_code_of(err)
            if code is None:
                raise
            typer.echo(f"{self.prefix}: {err}", err=True)
            raise typer.Exit(code) from None


def name_metavars(command: Any) -> None:
    """Give every option and argument of `command` that takes a value and names no metavar
    its own name in capitals, as argparse does (``--source-tree SOURCE_TREE``), instead of
    Typer's type (``<path>``)."""
    for param in getattr(command, "params", ()):
        if param.metavar is None and not getattr(param, "is_flag", False):
            param.metavar = (param.name or "value").upper()
        if isinstance(param, TyperArgument):
            param.__class__ = PlainArgument


class PlainArgument(TyperArgument):
    """An argument shown as argparse shows it: ``NAME`` in the usage line and the list, not
    Typer's ``{NAME}`` and ``NAME <str>``."""

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        return [str(self.metavar) if self.required else f"[{self.metavar}]"]

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


def group(cls: type[SyncdGroup] = SyncdGroup, **kwargs: Any) -> typer.Typer:
    """A Typer for one command group, its errors mapped by `cls` (a SyncdGroup). Help is
    plain text (no Rich markup): ``[dns]`` in a help text is a table of syncd.toml, shown as
    written."""
    return typer.Typer(cls=cls, rich_markup_mode=None, **kwargs)


# set in a context's meta while the root lists its commands: the registered line is enough
_LISTING = "syncd.cli.groups.listing"


@dataclass(frozen=True)
class Lazy:
    """A command of the root, `name`, defined by the Typer `attr` of `module`: a command group
    of that name (`group`), else the one command of that name it holds. `help` is the first
    sentence of its own help, all the root's list shows of it (tests/cli/test_lazy.py holds the
    two equal)."""

    name: str
    module: str
    help: str
    group: bool = False
    attr: str = "app"

    def load(self) -> Any:
        """Import the module and build its command as the root would have built it (typer's
        own click command: typer carries a copy of click)."""
        built = typer.main.get_group(getattr(importlib.import_module(self.module), self.attr))
        if not self.group:
            return built.commands[self.name]
        built.name = self.name
        return built


class Listed(TyperCommand):
    """A registered command not imported yet: its name and its line in the root's list."""

    def __init__(self, entry: Lazy) -> None:
        super().__init__(entry.name, help=entry.help)
        self.entry = entry


class LazyGroup(SyncdGroup):
    """A `SyncdGroup` whose commands in `lazy` are imported when they are resolved, not when the
    group is built; listing them (``--help``, a mistyped name's suggestion) imports none."""

    lazy: ClassVar[tuple[Lazy, ...]] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for entry in self.lazy:
            self.commands[entry.name] = Listed(entry)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = self.commands.get(cmd_name)
        if isinstance(cmd, Listed) and not ctx.meta.get(_LISTING):
            cmd = self.commands[cmd_name] = cmd.entry.load()
            name_metavars(cmd)
        return cmd

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        ctx.meta[_LISTING] = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            del ctx.meta[_LISTING]


def preload(lazy: tuple[Lazy, ...], argv: list[str]) -> None:
    """Import the module of the command `argv` names (its first word that is no option), so
    that it is loaded before the process freezes what start-up imported (`syncd.cli.main`)."""
    name = next((arg for arg in argv if not arg.startswith("-")), None)
    for entry in lazy:
        if entry.name == name:
            importlib.import_module(entry.module)
