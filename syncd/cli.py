"""The ``syncd`` command line."""

import typer

from syncd import __version__

app = typer.Typer(help="Push ClamAV database releases to every mirror and prove they arrived.")


@app.command()
def version() -> None:
    """Print the syncd version."""
    typer.echo(__version__)


def main() -> None:
    app()
