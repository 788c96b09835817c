"""The ``syncd`` command line: one module per command group, joined here. Each command reads
its options, calls a feature's entry (see the map in `syncd`), and prints; errors become exit
codes in one place (`syncd.cli.common.SyncdGroup`)."""

import gc
from typing import Annotated

import typer

from syncd import __version__
from syncd.cli import config, dns, heartbeat, keys, mirrors, monitor, publish, releases, runs
from syncd.cli.common import group

__all__ = ["app", "main"]

app = group(
    help="Push ClamAV database releases to every mirror and prove they arrived.",
    no_args_is_help=True,
)
app.add_typer(publish.app)
app.add_typer(runs.status_app)
app.add_typer(heartbeat.app)
app.add_typer(config.app, name="config")
app.add_typer(mirrors.app, name="mirrors")
app.add_typer(runs.app, name="runs")
app.add_typer(releases.app)
app.add_typer(keys.app, name="keys")
app.add_typer(monitor.app)
app.add_typer(dns.app, name="dns")


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(__version__)
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_print_version,
            help="Print the syncd version and exit.",
        ),
    ] = False,
) -> None:
    """Push ClamAV database releases to every mirror and prove they arrived."""


@app.command()
def version() -> None:
    """Print the syncd version."""
    typer.echo(__version__)


def main() -> None:
    # What start-up imported lives as long as the process: frozen, the cyclic collector no
    # longer walks it on every collection; and it runs less often (a fan-out allocates a
    # lot that is freed by reference counting alone). ~10 % of a publish's CPU at N=1000.
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)
    try:
        app()
    finally:
        # The process ends: the cyclic garbage it leaves (a fan-out's connections, ~50 ms
        # to collect at N=500) goes with it instead of being collected at exit. Python does
        # not promise finalizers at exit; every file and the record are closed by now.
        gc.freeze()
