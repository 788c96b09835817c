"""``syncd demo``: a real publish on this machine, loopback only (see `syncd.demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from syncd.cli.common import group

app = group()


@app.command("demo")
def demo_cmd(
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
