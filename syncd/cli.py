"""The ``syncd`` command line: one Typer per area, joined here."""

from pathlib import Path
from typing import Annotated

import typer

from syncd import __version__
from syncd.config_cli import config_app
from syncd.dns_cli import dns_app
from syncd.keys_cli import keys_app
from syncd.mirrors_cli import mirrors_app
from syncd.monitor_cli import monitor_app
from syncd.publish_cli import publish_app, runs_app

app = typer.Typer(
    help="Push ClamAV database releases to every mirror and prove they arrived.",
    no_args_is_help=True,
)
app.add_typer(publish_app)
app.add_typer(config_app, name="config")
app.add_typer(mirrors_app, name="mirrors")
app.add_typer(runs_app, name="runs")
app.add_typer(keys_app, name="keys")
app.add_typer(monitor_app)
app.add_typer(dns_app, name="dns")


@app.command()
def version() -> None:
    """Print the syncd version."""
    typer.echo(__version__)


@app.command()
def demo(
    workdir: Annotated[
        Path | None,
        typer.Option("--workdir", help="Where to build the fleet (default: a temp dir)."),
    ] = None,
    mirrors: Annotated[int, typer.Option("--mirrors", help="How many mirrors (1-64).")] = 4,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the working directory.")] = False,
) -> None:
    """Publish to a real fleet of sshd mirrors on loopback (from a source checkout)."""
    from syncd.demo import DemoError, run_demo

    try:
        code = run_demo(workdir, mirrors, keep)
    except DemoError as err:
        typer.echo(f"syncd demo: {err}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def main() -> None:
    app()
