"""``syncd config check``: validate syncd.toml and the inventory, say what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from syncd.cli.common import ConfigOpt, settings
from syncd.cli.groups import group
from syncd.errors import EXIT_USAGE, ConfigError
from syncd.files import find_config, read_inventory
from syncd.publish.command import check_secrets
from syncd.sqlite import state_problem

app = group(help="syncd.toml and the inventory.", no_args_is_help=True)


@app.command("check")
def check_cmd(
    config: ConfigOpt = None,
    inventory: Annotated[
        Path | None,
        typer.Option(
            "--inventory", metavar="FILE", help="Inventory to check (default from config)."
        ),
    ] = None,
) -> None:
    """Validate syncd.toml, its secrets (the pusher keys, the TSIG secret: owner only, mode 600,
    as syncd uses them) and the inventory; print what is in effect, exit 2 on an error."""
    path = find_config(config)
    cfg = settings(config)
    typer.echo(f"config: {path or 'none found (defaults)'}")
    for field in ("key", "inventory", "state", "source_tree", "source"):
        typer.echo(f"  {field} = {getattr(cfg, field) or '-'}")
    p = cfg.policy
    typer.echo(
        f"  policy: {p.handshake_concurrency} handshakes, {p.session_concurrency} sessions, "
        f"command {p.command_timeout:g} s, run {p.run_timeout:g} s, {p.max_attempts} attempts"
    )
    fine, problems = check_secrets(cfg, path)
    for line in fine:
        typer.echo(line)
    for bad in problems:
        typer.echo(f"syncd: {bad}", err=True)
    if problems:
        raise typer.Exit(EXIT_USAGE)
    if cfg.state is not None:
        problem = state_problem(cfg.state)
        if problem:
            raise ConfigError(problem)
        made = "" if cfg.state.exists() else " (created by the first publish)"
        typer.echo(f"state: {cfg.state}: writable{made}")
    inv_path = inventory or cfg.inventory
    if inv_path is None:
        typer.echo("inventory: not configured (give --inventory or set 'inventory')")
        return
    inv = read_inventory(inv_path)
    active = len(inv.active())
    typer.echo(f"inventory: {inv_path}: {len(inv.mirrors)} mirrors, {active} active: ok")
