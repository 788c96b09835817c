"""What the command groups share: the options and syncd.toml. The groups themselves, and the one
place where an error becomes syncd's exit code, are `syncd.cli.groups`; a push's live display
is `syncd.cli.push`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from syncd.errors import UsageError
from syncd.files import load_config
from syncd.settings import SyncdConfig, candidates

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


def stamp(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
