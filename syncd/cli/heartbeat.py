"""``syncd heartbeat``: between releases, move the timestamp on everywhere and keep DNS trusted."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from syncd.cli.common import (
    ConfigOpt,
    JsonOpt,
    KeyOpt,
    MirrorOpt,
    StateOpt,
    need,
    settings,
)
from syncd.cli.groups import group
from syncd.cli.push import push_inputs, run_push
from syncd.publish.command import prepare
from syncd.publish.heartbeat import HeartbeatOutcome, heartbeat_main, refresh_txt
from syncd.publish.report import dumps_strict
from syncd.publish.summary import exit_code, to_json

app = group()


@app.command("heartbeat")
def heartbeat_cmd(
    *,
    inventory: Annotated[
        Path | None,
        typer.Option("--inventory", metavar="FILE", help="The mirrors' inventory TOML."),
    ] = None,
    key: KeyOpt = None,
    state: StateOpt = None,
    source_tree: Annotated[
        Path | None,
        typer.Option(
            "--source-tree",
            metavar="DIR",
            help="The tree rsync1 and rsync2 serve: its timestamp is moved on to now.",
        ),
    ] = None,
    mirror: MirrorOpt = None,
    no_dns: Annotated[
        bool, typer.Option("--no-dns", help="Leave the TXT record alone even with [dns].")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the TXT refresh, send none.")
    ] = False,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Run every 3 hours between releases (deploy/systemd/syncd-heartbeat.timer): write now
    into the source tree's timestamp file, push it to every active mirror as a recorded run of
    kind 'heartbeat' (the same release; each mirror must then serve that timestamp over HTTP),
    and, with [dns] in syncd.toml, move the current.cvd TXT record's time on to now with its
    versions unchanged, so freshclam keeps trusting DNS (it stops after 12 hours).

    The monitor's "old" (a day) and "removed" (two days) then mean what they say: a mirror
    that missed eight heartbeats. Refused, before anything is pushed, when the timestamp would
    go backwards. Exit 0 when every mirror ends ok, 1 when any does not (or the TXT refresh
    failed), 2 on a configuration error or a refusal."""
    cfg = settings(config)
    tree = need(source_tree or cfg.source_tree, "--source-tree", "source_tree", cfg)
    prepared = prepare(
        cfg,
        push_inputs(cfg, inventory, key, state),
        only=mirror or [],
        tree=tree,
    )
    job, expected = prepared.job, dict(prepared.job.expected)
    outcome: HeartbeatOutcome = run_push(
        heartbeat_main,
        job,
        tree,
        time.time(),
        results=lambda o: (o.publish.results, o.publish.run_id),
    )
    run = outcome.publish
    txt = None
    if cfg.dns is not None and not no_dns:
        txt = refresh_txt(
            cfg.dns, state=job.state, source=expected, now=time.time(), dry_run=dry_run
        )
        if not json_out:
            shown = f"{txt.note}: {txt.value}" if txt.value else txt.note
            typer.echo(f"dns: {shown}" + (f" ({txt.error})" if txt.error else ""), err=True)
    if run.record_error:
        typer.echo(f"syncd: error: {run.record_error}", err=True)
    if json_out:
        doc = to_json(run.run_id, run.expected, run.results)
        if run.record_error:
            doc["record_error"] = run.record_error
        doc["kind"] = "heartbeat"
        doc["timestamp"] = outcome.stamp
        if txt is not None:
            doc["dns"] = {"txt": asdict(txt)}
        typer.echo(dumps_strict(doc))
    failed_txt = txt is not None and txt.error is not None
    raise typer.Exit(exit_code(run.results) or int(failed_txt) or int(bool(run.record_error)))
