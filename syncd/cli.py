"""The ``syncd`` command line: one Typer per area, joined here."""

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


def main() -> None:
    app()
