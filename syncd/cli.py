"""The ``syncd`` command line: one Typer per area, joined here."""

from pathlib import Path
from typing import Annotated

import typer

from syncd import __version__
from syncd.config_cli import config_app
from syncd.dns_cli import dns_app
from syncd.heartbeat_cli import heartbeat_app
from syncd.keys_cli import keys_app
from syncd.mirrors_cli import mirrors_app
from syncd.monitor_cli import monitor_app
from syncd.publish_cli import publish_app, runs_app

app = typer.Typer(
    help="Push ClamAV database releases to every mirror and prove they arrived.",
    no_args_is_help=True,
)
app.add_typer(publish_app)
app.add_typer(heartbeat_app)
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
        typer.Option(
            "--workdir",
            help="Where to build the fleet; emptied first, kept after "
            "(default: a temporary directory, removed after).",
        ),
    ] = None,
    mirrors: Annotated[int, typer.Option("--mirrors", help="How many real mirrors (1-64).")] = 8,
    simulated: Annotated[
        int,
        typer.Option(
            "--simulated",
            help="Then also publish to this many simulated "
            "mirrors with latency and faults (0-1000).",
        ),
    ] = 0,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the temporary directory.")] = False,
) -> None:
    """A real publish on this machine, loopback only (from a source checkout): two rsync
    daemons serve a release of synthetic CVDs; each mirror is a real sshd forcing the real
    clam-clientsync into its own tree, served by nginx; then syncd publish, the monitor's
    check and status page, and the record. Everything started is stopped at the end."""
    from syncd.demo import DemoError, run_demo

    try:
        code = run_demo(workdir, mirrors, keep, simulated)
    except (DemoError, RuntimeError, OSError) as err:  # a server that would not start, a disk
        typer.echo(f"syncd demo: {err}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def main() -> None:
    app()
