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
    group,
    prove_tree,
    push_job,
    run_push,
    settings,
    tier_problem,
)
from syncd.cli.dns import print_result
from syncd.files import read_inventory, read_source_tree
from syncd.publish.job import PublishOutcome, publish_main
from syncd.publish.outcome import PushOutcome
from syncd.publish.report import dumps_strict
from syncd.publish.request import expected_from_headers, parse_expect
from syncd.publish.summary import exit_code, to_json

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
    once the gate opens (see 'syncd dns push').

    Exit 0 when every mirror ends ok, 1 when any does not (or the DNS update failed, or the
    record lost writes), 2 on a configuration error, 75 when another syncd is publishing the
    run given to --resume."""
    cfg = settings(config)
    job = push_job(cfg, inventory, key, state, mirror)
    tree = source_tree or cfg.source_tree
    source = read_source_tree(tree) if tree is not None else None  # the release, read once
    if source is not None:
        prove_tree(job, source, cfg, warn=resume is None)
    if resume is None and source is not None:
        job.expected = expected_from_headers(source.raw_headers)
    job.expected.update(parse_expect(expect or []))
    job.resume = resume
    problem = tier_problem(job)
    if problem:
        typer.echo(f"syncd: warning: {problem}", err=True)
    outcome: PublishOutcome = run_push(publish_main, job, results=lambda o: (o.results, o.run_id))
    inventory_path = Path(job.inventory_path)
    ok = {r.name for r in outcome.results if r.outcome is PushOutcome.OK}
    # the inventory is read again only when a mirror pushed was pending (tomlkit is slow)
    pushed_pending = any(m.pending and m.name in ok for m in job.inventory.mirrors)
    promoted = []
    if pushed_pending:
        from syncd.inventory.onboarding import promote_pending  # mail parsing: start-up time

        promoted = promote_pending(inventory_path, ok)
    if promoted:
        typer.echo(f"now active (first successful publish): {', '.join(promoted)}", err=True)
    dns = None
    if cfg.dns is not None and not no_dns and source is not None:
        from syncd.dns.update import gate_after_publish  # dnspython: start-up time

        dns = gate_after_publish(
            cfg,
            cfg.dns,
            # the inventory as read for the push, or again when the push promoted mirrors
            inventory=read_inventory(inventory_path) if promoted else job.inventory,
            state=job.state,
            source=source,
            dry_run=dry_run,
            now=time.time(),
        )
        if not json_out:
            print_result(dns, as_json=False)
    if outcome.record_error:
        typer.echo(f"syncd: error: {outcome.record_error}", err=True)
    if json_out:
        doc = to_json(outcome.run_id, outcome.expected, outcome.results)
        if dns is not None:
            doc["dns"] = dns.to_json()
        if outcome.record_error:
            doc["record_error"] = outcome.record_error
        typer.echo(dumps_strict(doc))
    failed_dns = dns is not None and bool(dns.error)
    raise typer.Exit(
        exit_code(outcome.results) or int(failed_dns) or int(bool(outcome.record_error))
    )
