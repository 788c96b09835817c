"""``syncd monitor``: check every mirror's freshness, record it, announce every change, and
write the status page and the Prometheus metrics."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from syncd.adapters.sqlite import StoreError
from syncd.core.config import ConfigError
from syncd.core.inventory import InventoryError
from syncd.orchestration.monitorpass import run_pass
from syncd.publish_cli import ConfigOpt, StateOpt, fail, need, settings

monitor_app = typer.Typer()


def _print(summary: dict[str, Any]) -> None:
    counts: dict[str, int] = {}
    for m in summary["mirrors"]:
        counts[m["state"]] = counts.get(m["state"], 0) + 1
    typer.echo("mirrors: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    # a mirror's first check that finds it fresh is no news: counted, not listed
    first_fresh = [
        t for t in summary["transitions"] if t["from"] == "unknown" and t["to"] == "fresh"
    ]
    if first_fresh:
        typer.echo(f"first checks: {len(first_fresh)} fresh")
    for t in summary["transitions"]:
        if t not in first_fresh:
            typer.echo(f"{t['mirror']} [{t['family']}]: {t['from']} -> {t['to']}: {t['reason']}")
    mail = summary["mail"]
    if mail["error"]:
        typer.echo(f"mail failed: {mail['error']}", err=True)
    elif mail["sent"] or mail["held"]:
        typer.echo(f"mail: {mail['sent']} sent, {mail['held']} held back by the rate limit")


@monitor_app.command("monitor")
def monitor_cmd(
    *,
    inventory: Annotated[
        Path | None, typer.Option("--inventory", help="The inventory TOML.")
    ] = None,
    state: StateOpt = None,
    source_tree: Annotated[
        Path | None, typer.Option("--source-tree", help="The release's CVDs: what current means.")
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="One pass, then exit (cron, systemd timer).")
    ] = False,
    every: Annotated[
        float | None,
        typer.Option("--every", help="Seconds between passes (default [monitor] interval_s)."),
    ] = None,
    passes: Annotated[
        int | None,
        typer.Option("--passes", help="Stop after this many passes (long-running mode)."),
    ] = None,
    no_mail: Annotated[
        bool, typer.Option("--no-mail", help="Record and print, send no mail.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per pass on stdout.")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Check every enabled mirror over HTTP as freshclam sees it (timestamp and CVD headers, on
    IPv4 and IPv6 separately), judge it fresh / lagging / old / unreachable / removed, record
    every check and change in the state database, mail each change to the mirror's admins and a
    digest to the team, and write the status page and Prometheus metrics configured in
    [monitor]. Runs once with --once, else every --every seconds until interrupted."""
    cfg = settings(config)
    inv = need(inventory or cfg.inventory, "--inventory", "inventory")
    db = need(state or cfg.state, "--state", "state")
    tree = need(source_tree or cfg.source_tree, "--source-tree", "source_tree")
    interval = every if every is not None else cfg.monitor.interval_s
    done = 0
    failed = False
    try:
        while True:
            started = time.monotonic()
            try:
                summary = run_pass(
                    inventory=inv,
                    state=db,
                    source_tree=tree,
                    cfg=cfg.monitor,
                    send_mail=not no_mail,
                    clock=time.time,
                )
            except (ConfigError, InventoryError, StoreError) as err:
                raise fail(str(err)) from None
            if as_json:
                typer.echo(json.dumps(summary, sort_keys=True))
            else:
                _print(summary)
            failed = bool(summary["mail"]["error"])
            done += 1
            if once or (passes is not None and done >= passes):
                break
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        typer.echo("monitor: interrupted", err=True)
    raise typer.Exit(1 if failed else 0)
