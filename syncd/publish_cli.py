"""``syncd publish``, ``syncd status`` and ``syncd runs show``: push a release, read the record."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import trio
import typer
from rich.console import Console

from pushwire.request import RequestError
from syncd.adapters.files import load_config, read_cvd_headers, read_inventory
from syncd.adapters.publishstore import PublishStore
from syncd.adapters.sqlite import StoreError, open_db
from syncd.adapters.ssh import SshSetupError
from syncd.core.config import ConfigError, SyncdConfig
from syncd.core.inventory import InventoryError
from syncd.core.request import expected_from_headers, parse_expect
from syncd.core.summary import exit_code, to_json
from syncd.display import PlainProgress, RichProgress, print_summary
from syncd.orchestration.publish_job import PublishJob, PublishSetupError, publish_main

publish_app = typer.Typer()
runs_app = typer.Typer(help="Read past publish runs from the record.", no_args_is_help=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="syncd.toml (default: ./etc, ~/.config/syncd, /etc/syncd, first found).",
    ),
]
StateOpt = Annotated[
    Path | None, typer.Option("--state", help="The SQLite record (default from syncd.toml).")
]


def fail(message: str) -> typer.Exit:
    """Print one line and return the exit for a configuration or usage error (2)."""
    typer.echo(f"syncd: {message}", err=True)
    return typer.Exit(2)


def settings(config: Path | None) -> SyncdConfig:
    try:
        return load_config(config)[0]
    except ConfigError as err:
        raise fail(str(err)) from None


def need(value: Path | None, option: str, key: str) -> Path:
    if value is None:
        raise fail(f"{option} is required (or set {key!r} in syncd.toml)")
    return value


def _stamp(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@publish_app.command("publish")
def publish_cmd(
    *,
    inventory: Annotated[
        Path | None, typer.Option("--inventory", help="The mirrors' inventory TOML.")
    ] = None,
    key: Annotated[Path | None, typer.Option("--key", help="The pusher's private key.")] = None,
    state: StateOpt = None,
    source_tree: Annotated[
        Path | None,
        typer.Option("--source-tree", help="Read the release's versions from these CVDs."),
    ] = None,
    expect: Annotated[
        list[str] | None,
        typer.Option("--expect", help="DB=VERSION, e.g. daily=28034 (overrides the tree)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Finish run RUN_ID: only mirrors not ok.")
    ] = None,
    mirror: Annotated[
        list[str] | None, typer.Option("--mirror", help="Only this mirror (repeatable).")
    ] = None,
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

    Exit 0 when every mirror ends ok, 1 when any does not (or the DNS update failed), 2 on a
    configuration error."""
    cfg = settings(config)
    inventory_path = need(inventory or cfg.inventory, "--inventory", "inventory")
    key_path = need(key or cfg.key, "--key", "key")
    state_path = need(state or cfg.state, "--state", "state")
    try:
        inv = read_inventory(inventory_path)
        expected: dict[str, int] = {}
        tree = source_tree or cfg.source_tree
        if resume is None and tree is not None:
            expected = expected_from_headers(read_cvd_headers(tree))
        expected.update(parse_expect(expect or []))
    except (ConfigError, InventoryError, RequestError) as err:
        raise fail(str(err)) from None
    job = PublishJob(
        key=key_path,
        state=state_path,
        inventory=inv,
        inventory_path=str(inventory_path),
        policy=cfg.policy,
        expected=expected,
        resume=resume,
        only=list(mirror or []),
    )
    console = Console(stderr=True) if sys.stderr.isatty() else None
    progress = RichProgress(console) if console else PlainProgress()
    try:
        outcome = trio.run(publish_main, job, progress)
    except (PublishSetupError, SshSetupError, StoreError) as err:
        raise fail(str(err)) from None
    finally:
        if isinstance(progress, RichProgress):
            progress.stop()
    print_summary(outcome.results, outcome.run_id, console=console)
    _promote_pending(inventory_path, {r.name for r in outcome.results if r.outcome == "ok"})
    dns = None
    if cfg.dns is not None and not no_dns and tree is not None:
        dns = _gate(cfg, inventory_path, state_path, tree, dry_run=dry_run, quiet=json_out)
    if json_out:
        doc = to_json(outcome.run_id, outcome.expected, outcome.results)
        if dns is not None:
            doc["dns"] = dns
        typer.echo(json.dumps(doc))
    failed_dns = dns is not None and bool(dns.get("error"))
    raise typer.Exit(exit_code(outcome.results) or int(failed_dns))


def _promote_pending(path: Path, ok: set[str]) -> None:
    """A pending mirror's first successful publish makes it a regular active mirror."""
    from syncd.adapters.files import write_inventory
    from syncd.core.inventory import updated

    inv = read_inventory(path)
    promoted = [m.name for m in inv.mirrors if m.pending and m.name in ok]
    for name in promoted:
        inv = updated(inv, name, pending=False)
    if promoted:
        write_inventory(path, inv)
        typer.echo(f"now active (first successful publish): {', '.join(promoted)}", err=True)


def _gate(
    cfg: SyncdConfig, inventory: Path, state: Path, tree: Path, *, dry_run: bool, quiet: bool
) -> dict[str, Any]:
    """The release gate after a publish: its result, errors included (never raised)."""
    from syncd.dns_cli import dns_errors, print_result
    from syncd.orchestration.dnsupdate import update

    assert cfg.dns is not None
    try:
        result = update(cfg, cfg.dns, inventory=inventory, state=state, tree=tree, dry_run=dry_run)
    except dns_errors() as err:
        result = {"gate": None, "changes": [], "sent": False, "dry_run": dry_run, "error": str(err)}
    if not quiet:
        if result["gate"] is None:
            typer.echo(f"dns: not updated: {result['error']}", err=True)
        else:
            print_result(result, as_json=False)
    return result


def _store(state: Path | None, config: Path | None) -> PublishStore:
    path = need(state or settings(config).state, "--state", "state")
    if not path.exists():
        raise fail(f"{path}: no record yet (run 'syncd publish' first)")
    try:
        return PublishStore(open_db(path))
    except StoreError as err:
        raise fail(str(err)) from None


@publish_app.command("status")
def status_cmd(state: StateOpt = None, config: ConfigOpt = None) -> None:
    """Show recent runs and each mirror's current state from the record."""
    store = _store(state, config)
    runs = store.runs(5)
    typer.echo("recent runs:" if runs else "no runs recorded")
    for run in runs:
        outcomes: dict[str, int] = {}
        for t in store.targets(run.run_id):
            outcomes[t.outcome or "pending"] = outcomes.get(t.outcome or "pending", 0) + 1
        counts = ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items()))
        release = " ".join(f"{db}={v}" for db, v in sorted(run.expected.items()))
        typer.echo(f"  {run.run_id}  {_stamp(run.started_at)}  {run.state:9}  {release}  {counts}")
    states = store.mirror_states()
    if states:
        typer.echo("mirrors:")
    for s in states:
        versions = " ".join(f"{db}={v}" for db, v in sorted((s["versions"] or {}).items()))
        typer.echo(
            f"  {s['mirror']}  {s['outcome']:17}  last ok {_stamp(s['last_ok_at'])}  {versions}"
        )


@runs_app.command("show")
def runs_show_cmd(
    run_id: Annotated[str, typer.Argument(help="The run id printed by syncd publish.")],
    state: StateOpt = None,
    config: ConfigOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
) -> None:
    """Show one run: each mirror's outcome and every attempt."""
    store = _store(state, config)
    run = store.run(run_id)
    if run is None:
        raise fail(f"no run {run_id!r}: see 'syncd status'")
    targets = store.targets(run_id)
    if json_out:
        doc = {
            "run_id": run.run_id,
            "state": run.state,
            "expected": run.expected,
            "invocations": run.invocations,
            "mirrors": [
                {
                    "name": t.mirror,
                    "outcome": t.outcome,
                    "attempts": t.attempts,
                    "error": t.error,
                    "report": t.report,
                }
                for t in targets
            ],
        }
        typer.echo(json.dumps(doc))
        return
    typer.echo(
        f"run {run.run_id}: {run.state}, started {_stamp(run.started_at)}, "
        f"finished {_stamp(run.finished_at)}, {run.invocations} invocation(s)"
    )
    typer.echo(f"request: {run.request}")
    for t in targets:
        typer.echo(f"{t.mirror}: {t.outcome or 'pending'}" + (f": {t.error}" if t.error else ""))
        for a in store.attempts(run_id, t.mirror):
            exit_text = "-" if a["exit_status"] is None else a["exit_status"]
            typer.echo(
                f"  #{a['number']} {a['verb']:6} {_stamp(a['started_at'])} "
                f"{a['verdict'] or 'unfinished'} exit {exit_text}"
                + (f": {a['error']}" if a["error"] else "")
            )
