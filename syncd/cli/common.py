"""What the command groups share: the options, syncd.toml, the live display of a push, and the
one place where an error becomes syncd's exit code (`SyncdGroup`)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import trio
import typer
from typer.core import TyperArgument, TyperGroup

from pushwire.request import RequestError
from syncd.cli.display import PlainProgress, RichProgress, print_summary
from syncd.errors import EXIT_USAGE, SyncdError, UsageError
from syncd.files import (
    load_config,
)
from syncd.publish.command import Inputs
from syncd.publish.fanout import Progress
from syncd.publish.summary import MirrorResult
from syncd.settings import SyncdConfig, candidates

if TYPE_CHECKING:
    from rich.console import Console

T = TypeVar("T")

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


ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="FILE",
        help="syncd.toml (default: ./etc, ~/.config/syncd, /etc/syncd, first found).",
    ),
]
StateOpt = Annotated[
    Path | None,
    typer.Option("--state", metavar="FILE", help="The SQLite record (default from syncd.toml)."),
]
InventoryOpt = Annotated[
    Path | None,
    typer.Option("--inventory", metavar="FILE", help="The inventory TOML (default from config)."),
]
KeyOpt = Annotated[
    Path | None, typer.Option("--key", metavar="FILE", help="The pusher's private key (mode 600).")
]
TreeOpt = Annotated[
    Path | None, typer.Option("--source-tree", metavar="DIR", help="The release's CVDs.")
]
MirrorOpt = Annotated[
    list[str] | None,
    typer.Option("--mirror", metavar="NAME", help="Only this mirror (repeatable)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def settings(config: Path | None) -> SyncdConfig:
    """The configuration in effect (`config`, else the first syncd.toml found)."""
    return load_config(config)[0]


def need(value: Path | None, option: str, key: str, cfg: SyncdConfig) -> Path:
    """`value`, given on the command line or in syncd.toml (`cfg`); raise UsageError when
    neither, naming the syncd.toml read, or where none was found."""
    if value is None:
        path = cfg.origin
        if path is not None:
            where = f"{path} sets none"
        else:
            looked = ", ".join(str(p) for p in candidates(Path.cwd(), Path.home()))
            where = f"no syncd.toml found: looked for {looked}"
        raise UsageError(f"{option} is required (or set {key!r} in syncd.toml): {where}")
    return value


def push_inputs(
    cfg: SyncdConfig, inventory: Path | None, key: Path | None, state: Path | None
) -> Inputs:
    """The push's inventory, key and record: the options, else syncd.toml's (with [[sources]]
    and no --key, each source's key pushes its share: the first one's is the fallback)."""
    first = cfg.sources[0].key if cfg.sources else None
    return Inputs(
        inventory=need(inventory or cfg.inventory, "--inventory", "inventory", cfg),
        key=need(key or cfg.key or first, "--key", "key", cfg),
        state=need(state or cfg.state, "--state", "state", cfg),
        sources=key is None,
    )


def stamp(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def run_push(
    main: Callable[..., Awaitable[T]],
    *args: Any,
    results: Callable[[T], tuple[list[MirrorResult], str]],
) -> T:
    """Run a push (`main(*args, progress)` under trio) with a live display on a terminal, plain
    lines otherwise; print its summary (`results` of its outcome); return the outcome."""
    console: Console | None = None
    if sys.stderr.isatty():  # rich only for a terminal: its import is start-up time
        from rich.console import Console

        console = Console(stderr=True)
    progress: Progress = RichProgress(console) if console else PlainProgress()
    try:
        outcome: T = trio.run(functools.partial(main, *args, progress))
    finally:
        if isinstance(progress, RichProgress):
            progress.stop()
    mirrors, run_id = results(outcome)
    print_summary(mirrors, run_id, console=console)
    return outcome
