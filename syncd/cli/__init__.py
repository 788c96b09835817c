"""The ``syncd`` command line: one module per command group, registered here by name and
imported only when its command runs (`syncd.cli.groups`). Each command reads its options, calls a
feature's entry (see the map in `syncd`), and prints; errors become exit codes in one place
(`syncd.cli.groups.SyncdGroup`)."""

import gc
import sys
from typing import Annotated, ClassVar

import typer

from syncd import __version__
from syncd.cli.groups import Lazy, LazyGroup, group, preload

__all__ = ["COMMANDS", "app", "main"]

# Every command and group after `version`, in the order `syncd --help` lists them; each help
# is the first sentence of the command's own (tests/cli/test_lazy.py holds them equal).
COMMANDS: tuple[Lazy, ...] = (
    Lazy(
        "publish",
        "syncd.cli.publish",
        "Push the release to every active mirror, prove it arrived, print the summary; then, "
        "when syncd.toml has [dns], update the rotation and announce the release in the TXT "
        "record once the gate opens (see 'syncd dns push'); with [announce], mail the release "
        "the TXT announces to the list, once.",
    ),
    Lazy(
        "status",
        "syncd.cli.runs",
        "Show recent runs and each mirror's current state from the record.",
        attr="status_app",
    ),
    Lazy(
        "heartbeat",
        "syncd.cli.heartbeat",
        "Run every 3 hours between releases (deploy/systemd/syncd-heartbeat.timer): write now "
        "into the source tree's timestamp file, push it to every active mirror as a recorded "
        "run of kind 'heartbeat' (the same release; each mirror must then serve that timestamp "
        "over HTTP), and, with [dns] in syncd.toml, move the current.cvd TXT record's time on to "
        "now with its versions unchanged, so freshclam keeps trusting DNS (it stops after 12 "
        "hours).",
    ),
    Lazy("config", "syncd.cli.config", "syncd.toml and the inventory.", group=True),
    Lazy("mirrors", "syncd.cli.mirrors", "Read and edit the inventory of mirrors.", group=True),
    Lazy("runs", "syncd.cli.runs", "Read past publish runs from the record.", group=True),
    Lazy(
        "releases",
        "syncd.cli.releases",
        "Show the last N releases side by side: when each was built, published and announced "
        "in DNS, how long it took from the publish's start until 50, 90, 99 and 100 % of the "
        "active mirrors served it (proven over HTTP by the publish or seen by the monitor), and "
        "how many still miss it.",
    ),
    Lazy(
        "keys",
        "syncd.cli.keys",
        "The pusher keys: render keys/pushers.toml into signed authorized_keys files.",
        group=True,
    ),
    Lazy(
        "monitor",
        "syncd.cli.monitor",
        "Check every enabled mirror over HTTP as freshclam sees it (timestamp and CVD headers, "
        "on IPv4 and IPv6 separately), judge it fresh / lagging / old / unreachable / removed, "
        "record every check and change in the state database, mail each change to the mirror's "
        "admins and a digest to the team, and write the status page and Prometheus metrics "
        "configured in [monitor] (with the traffic the mirrors reported); with [announce], mail "
        "the list the release the TXT announces if no publish could (once per release).",
    ),
    Lazy(
        "dns",
        "syncd.cli.dns",
        "The db.XY rotation and the current.cvd TXT record.",
        group=True,
    ),
)


class Root(LazyGroup):
    lazy: ClassVar[tuple[Lazy, ...]] = COMMANDS


app = group(
    Root,
    help="Push ClamAV database releases to every mirror and prove they arrived.",
    no_args_is_help=True,
)


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
    # The command's own module is imported first, so that it is frozen with the rest.
    preload(COMMANDS, sys.argv[1:])
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)
    try:
        app()
    finally:
        # The process ends: the cyclic garbage it leaves (a fan-out's connections, ~50 ms
        # to collect at N=500) goes with it instead of being collected at exit. Python does
        # not promise finalizers at exit; every file and the record are closed by now.
        gc.freeze()
