"""``syncd dns``: render the rotation and the TXT record from what mirrors really serve, and
push the difference to the authoritative server (RFC 2136, TSIG) once the release gate opens."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from syncd.cli.common import ConfigOpt, InventoryOpt, StateOpt, TreeOpt, need, settings
from syncd.cli.groups import group
from syncd.dns.config import DnsConfig
from syncd.dns.plan import LOCAL_POOL
from syncd.dns.update import DnsUpdate, render, update, write_named_conf
from syncd.errors import ConfigError
from syncd.files import read_inventory, read_source_tree
from syncd.settings import SyncdConfig

app = group(help="The db.XY rotation and the current.cvd TXT record.", no_args_is_help=True)


def _inputs(
    config: Path | None, inventory: Path | None, state: Path | None, source_tree: Path | None
) -> tuple[SyncdConfig, DnsConfig, Path, Path, Path]:
    cfg = settings(config)
    if cfg.dns is None:
        raise ConfigError(
            "no [dns] table in syncd.toml: add server, zone, key_name and key_secret_file"
        )
    return (
        cfg,
        cfg.dns,
        need(inventory or cfg.inventory, "--inventory", "inventory", cfg),
        need(state or cfg.state, "--state", "state", cfg),
        need(source_tree or cfg.source_tree, "--source-tree", "source_tree", cfg),
    )


@app.command("render")
def render_cmd(
    *,
    config: ConfigOpt = None,
    inventory: InventoryOpt = None,
    state: StateOpt = None,
    source_tree: TreeOpt = None,
    named_conf: Annotated[
        Path | None,
        typer.Option(
            "--named-conf",
            help="With a dns.local table: write the views' named.conf fragment, the view keys "
            "(mode 0600) and each view's db.local zone file not yet there into this directory, "
            "and record the views in the state database (every push manages each of them).",
        ),
    ] = None,
) -> None:
    """Print the zone fragment (BIND syntax) the rotation should hold now: per country the
    A/AAAA records of db.XY for mirrors that are enabled, fresh and serve the current release
    (falling back when a country has none, and saying so), db.local, and current.cvd's TXT.
    With a dns.local table in syncd.toml, db.local is by region: one BIND view per country and
    continent (GeoIP2 ACLs) and a default view, each pool listed as comments; without a GeoIP2
    country database in geoip_directory every client gets the default view, with a warning."""
    cfg, dns, inv, db, tree = _inputs(config, inventory, state, source_tree)
    source = read_source_tree(tree)
    out = render(cfg, dns, inventory=read_inventory(inv), state=db, source=source, now=time.time())
    if out.warning:
        typer.echo(f"warning: {out.warning}", err=True)
    typer.echo(f"; zone {dns.zone}: rendered by syncd dns render")
    for pool in out.pools:
        if pool.note:
            typer.echo(f"; {pool.name}: {pool.note}")
    typer.echo(f"; gate: {'open' if out.gate.reached else 'closed'}: {out.gate.reason}")
    typer.echo(out.text, nl=False)
    if out.local is not None:
        count = f"{len(out.local)} view" + ("s" if len(out.local) != 1 else "")
        typer.echo(f"; db.local by region: {count}, first match wins")
        if out.warning:
            typer.echo(f"; warning: {out.warning}")
        for rp in out.local:
            region, pool = rp.region, rp.pool
            typer.echo(
                f'; view "{region.view}" ({region.match}): '
                + (", ".join(pool.members) or "default pool")
            )
            if pool.note:
                typer.echo(f";   {pool.note}")
            for address in pool.addresses:
                rdtype = "AAAA" if ":" in address else "A"
                typer.echo(f";   {LOCAL_POOL}.{dns.zone}. {dns.ttl} IN {rdtype} {address}")
        if named_conf is not None:
            for path in write_named_conf(dns, out.local, named_conf, state=db, now=time.time()):
                typer.echo(f"; wrote {path}")
    elif named_conf is not None:
        raise ConfigError(
            "--named-conf needs db.local by region: add a [dns.local] table to syncd.toml"
        )


@app.command("push")
def push_cmd(
    *,
    config: ConfigOpt = None,
    inventory: InventoryOpt = None,
    state: StateOpt = None,
    source_tree: TreeOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the changes, send none.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Send the server only the difference between what it holds and what it should hold: the
    pools always follow the mirrors; the TXT record moves to the new release only when the gate
    is open (gate_share of active mirrors serve it, verified by report and HTTP, and no country
    left without one). A TXT record never goes backwards nor announces what the source tree
    does not have. With a dns.local table, each view's db.local follows its region's pool, updated
    with the view's own key: every view of the inventory's countries (a country whose mirrors are
    all disabled keeps its view, filled from its fallback) and every view named.conf was
    rendered with. The steps keep every client's answers true: first every pool in
    every view drops the mirrors that do not serve what the TXT will announce; then every
    authoritative server ([dns] secondaries too) must serve that change; then, once the removed
    records' TTL ([dns] pool_ttl) has passed, the TXT moves. A failed step ends the sequence,
    the TXT stays (when only the settle after the TXT fails, it has moved on the primary and
    the output names the lagging server), and the exit code is 1. Failed updates are retried,
    then reported; every change is recorded."""
    cfg, dns, inv, db, tree = _inputs(config, inventory, state, source_tree)
    source = read_source_tree(tree)
    result = update(
        cfg,
        dns,
        inventory=read_inventory(inv),
        state=db,
        source=source,
        dry_run=dry_run,
        now=time.time(),
    )
    print_result(result, as_json=as_json)
    raise typer.Exit(1 if result.error else 0)


def print_result(result: DnsUpdate, *, as_json: bool) -> None:
    """Print what a DNS update did: its JSON document, or the gate and each change."""
    if as_json:
        typer.echo(json.dumps(result.to_json(), sort_keys=True))
        return
    gate = result.gate
    if gate is None:
        typer.echo(f"dns: not updated: {result.error}", err=True)
        return
    typer.echo(f"gate {'open' if gate.reached else 'closed'}: {gate.reason}")
    if gate.laggards and not gate.reached:
        typer.echo("held back by: " + ", ".join(gate.laggards))
    verb = "would change" if result.dry_run else "change"
    for c in result.changes:
        where = f"{c.name} [view {c.view}]" if c.view else c.name
        typer.echo(f"{verb} {where} {c.rdtype}: +{list(c.add)} -{list(c.remove)} ({c.reason})")
    if not result.changes:
        typer.echo("the server already holds what it should: nothing sent")
    for problem in result.problems:
        typer.echo(f"out of rotation: {problem}")
    if result.announced:
        typer.echo(result.announced)
    if result.error:
        typer.echo(f"update failed: {result.error}; {txt_outcome(result)}", err=True)


def txt_outcome(result: DnsUpdate) -> str:
    """What became of the TXT record in a failed update: not moved, or (when only the settle
    after it failed) moved on the primary while a server named in the error lags behind."""
    from syncd.dns.steps import Step

    moved = next((r for r in result.steps if r.step is Step.ANNOUNCE and r.ok), None)
    if moved is None:
        return "the TXT record was not moved"
    return (
        f"the TXT record moved on the primary ({moved.detail}); the lagging server named above "
        "still serves the old one until it transfers the zone"
    )
