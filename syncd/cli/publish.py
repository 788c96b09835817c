"""``syncd publish``: push a release to every mirror, prove it arrived, then let the release
gate update DNS."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from syncd.cli.common import (
    ConfigOpt,
    JsonOpt,
    KeyOpt,
    MirrorOpt,
    StateOpt,
    settings,
)
from syncd.cli.dns import print_result
from syncd.cli.groups import group
from syncd.cli.push import push_inputs, run_push
from syncd.publish.command import finish, prepare
from syncd.publish.job import RunOutcome, publish_main
from syncd.publish.report import dumps_strict
from syncd.publish.summary import to_json

app = group()


@app.command("publish")
def publish_cmd(
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
            "--source-tree", metavar="DIR", help="Read the release's versions from these CVDs."
        ),
    ] = None,
    expect: Annotated[
        list[str] | None,
        typer.Option(
            "--expect",
            metavar="DB=VERSION",
            help="DB=VERSION, e.g. daily=28034 (overrides the tree).",
        ),
    ] = None,
    json_out: JsonOpt = False,
    resume: Annotated[
        str | None,
        typer.Option("--resume", metavar="RUN_ID", help="Finish run RUN_ID: only mirrors not ok."),
    ] = None,
    mirror: MirrorOpt = None,
    no_dns: Annotated[
        bool, typer.Option("--no-dns", help="Leave DNS alone even when [dns] is configured.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the DNS changes the gate would make.")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Push the release to every active mirror, prove it arrived, print the summary; then,
    when syncd.toml has [dns], update the rotation and announce the release in the TXT record
    once the gate opens (see 'syncd dns push'); with [announce], mail the release the TXT
    announces to the list, once.

    Exit 0 when every mirror ends ok, 1 when any does not (or the DNS update failed, or the
    record lost writes), 2 on a configuration error, 75 when another syncd is publishing the
    run given to --resume."""
    cfg = settings(config)
    tree = source_tree or cfg.source_tree
    prepared = prepare(
        cfg,
        push_inputs(cfg, inventory, key, state),
        only=mirror or [],
        tree=tree,
        expect=expect or [],
        resume=resume,
    )
    for warning in prepared.warnings:
        typer.echo(f"syncd: warning: {warning}", err=True)
    outcome: RunOutcome = run_push(
        publish_main, prepared.job, results=lambda o: (o.results, o.run_id)
    )
    done = finish(cfg, prepared, outcome, gate=not no_dns, dry_run=dry_run, now=time.time())
    if done.promoted:
        typer.echo(f"now active (first successful publish): {', '.join(done.promoted)}", err=True)
    dns = done.dns
    if dns is not None and not json_out:
        print_result(dns, as_json=False)
    if outcome.record_error:
        typer.echo(f"syncd: error: {outcome.record_error}", err=True)
    if done.announcement is not None and (done.announcement.sent or done.announcement.error):
        typer.echo(f"syncd: {done.announcement.line()}", err=True)
    if json_out:
        doc = to_json(outcome.run_id, outcome.expected, outcome.results)
        if dns is not None:
            doc["dns"] = dns.to_json()
        if outcome.record_error:
            doc["record_error"] = outcome.record_error
        if done.announcement is not None:
            doc["announcement"] = done.announcement.to_json()
        typer.echo(dumps_strict(doc))
    raise typer.Exit(done.exit_code)
