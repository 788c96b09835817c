"""``syncd dns``: render the rotation and the TXT record from what mirrors really serve, and
push the difference to the authoritative server (RFC 2136, TSIG) once the release gate opens."""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from syncd.adapters.dns import DnsServer, DnsUpdateError, read_records, send_update
from syncd.adapters.dnsstore import DnsStore
from syncd.adapters.files import read_cvd_headers, read_inventory
from syncd.adapters.monitorstore import MonitorStore
from syncd.adapters.publishstore import PublishStore
from syncd.adapters.sqlite import StoreError, open_db
from syncd.core.config import ConfigError, SyncdConfig
from syncd.core.cvd import parse_header
from syncd.core.dnsplan import (
    TXT_NAME,
    Change,
    DnsSafetyError,
    MirrorEntry,
    TxtRecord,
    check_txt,
    desired_records,
    diff,
    plan_pools,
)
from syncd.core.freshness import State
from syncd.core.gate import GateVerdict, MirrorEvidence, judge, serves_release
from syncd.core.inventory import InventoryError
from syncd.core.monitorconfig import DnsConfig
from syncd.publish_cli import ConfigOpt, StateOpt, fail, need, settings

dns_app = typer.Typer(
    help="The db.XY rotation and the current.cvd TXT record.", no_args_is_help=True
)


def _addresses(host: str) -> tuple[str, ...]:
    try:
        return (str(ipaddress.ip_address(host)),)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return ()
    return tuple(sorted({str(i[4][0]) for i in infos}))


def evidence(
    cfg: SyncdConfig, inventory: Path, state: Path
) -> tuple[list[MirrorEvidence], dict[str, tuple[str, ...]]]:
    """Per mirror what the publish record and the monitor say, and its addresses."""
    inv = read_inventory(inventory)
    conn = open_db(state)
    try:
        published = {s["mirror"]: s for s in PublishStore(conn).mirror_states()}
        monitor = MonitorStore(conn)
        records = monitor.records()
        out, addrs = [], {}
        for m in inv.mirrors:
            pub = published.get(m.name)
            reported = pub["versions"] if pub and pub["outcome"] == "ok" else None
            checks = [c for c in monitor.checks(m.name, 0.0) if c.ok and c.versions]
            served = None
            if checks and (pub is None or checks[-1].at >= pub["at"]):
                served = dict(checks[-1].versions or {})
            elif reported and m.http and cfg.policy.http_check:
                served = reported  # publish proved it over HTTP before calling it ok
            states = [r.state for (name, _), r in records.items() if name == m.name]
            fresh = all(s is State.FRESH for s in states)
            out.append(MirrorEvidence(m.name, m.country, m.active, reported, served, fresh))
            addrs[m.name] = _addresses(m.host)
    finally:
        conn.close()
    return out, addrs


def plan(
    cfg: SyncdConfig, *, dns: DnsConfig, inventory: Path, state: Path, tree: Path, now: float
) -> tuple[GateVerdict, list[MirrorEntry], TxtRecord, dict[str, int]]:
    heads = {db: parse_header(h) for db, h in read_cvd_headers(tree).items()}
    release = {db: h.version for db, h in heads.items()}
    mirrors, addrs = evidence(cfg, inventory, state)
    verdict = judge(mirrors, release, dns.gate_share)
    entries = [
        MirrorEntry(
            m.name,
            m.country,
            addrs[m.name],
            serves_release(m, release),
            "" if serves_release(m, release) else "does not serve the release",
        )
        for m in mirrors
        if m.active
    ]
    flevel = heads["daily"].functionality if "daily" in heads else 0
    txt = TxtRecord(
        dns.clamav_version,
        release.get("main", 0),
        release.get("daily", 0),
        int(now),
        dns.version_warning,
        flevel,
        dns.safebrowsing,
        release.get("bytecode", 0),
    )
    return verdict, entries, txt, release


def _server(dns: DnsConfig) -> DnsServer:
    try:
        secret = dns.key_secret_file.read_text().strip()
    except OSError as err:
        raise fail(f"[dns] key_secret_file {dns.key_secret_file}: {err.strerror}") from None
    return DnsServer(
        dns.server, dns.port, dns.zone, dns.key_name, secret, dns.key_algorithm, ttl=dns.ttl
    )


def _zone_text(records: dict[tuple[str, str], tuple[str, ...]], ttl: int) -> str:
    import dns.rrset

    lines = []
    for (name, rdtype), values in sorted(records.items()):
        if values:
            rrset = dns.rrset.from_text_list(name, ttl, "IN", rdtype, list(values))
            lines.append(rrset.to_text())
    return "\n".join(lines) + "\n"


def _inputs(
    config: Path | None, inventory: Path | None, state: Path | None, source_tree: Path | None
) -> tuple[SyncdConfig, DnsConfig, Path, Path, Path]:
    cfg = settings(config)
    if cfg.dns is None:
        raise fail("no [dns] table in syncd.toml: add server, zone, key_name and key_secret_file")
    return (
        cfg,
        cfg.dns,
        need(inventory or cfg.inventory, "--inventory", "inventory"),
        need(state or cfg.state, "--state", "state"),
        need(source_tree or cfg.source_tree, "--source-tree", "source_tree"),
    )


InventoryOpt = Annotated[Path | None, typer.Option("--inventory", help="The inventory TOML.")]
TreeOpt = Annotated[Path | None, typer.Option("--source-tree", help="The release's CVDs.")]


@dns_app.command("render")
def render_cmd(
    *,
    config: ConfigOpt = None,
    inventory: InventoryOpt = None,
    state: StateOpt = None,
    source_tree: TreeOpt = None,
) -> None:
    """Print the zone fragment (BIND syntax) the rotation should hold now: per country the
    A/AAAA records of db.XY for mirrors that are enabled, fresh and serve the current release
    (falling back when a country has none, and saying so), db.local, and current.cvd's TXT."""
    try:
        cfg, dns, inv, db, tree = _inputs(config, inventory, state, source_tree)
        verdict, entries, txt, _ = plan(
            cfg, dns=dns, inventory=inv, state=db, tree=tree, now=time.time()
        )
        pools = plan_pools(
            entries, fallback_count=dns.fallback_count, default_pool=dns.default_pool
        )
    except (ConfigError, InventoryError, StoreError, DnsSafetyError) as err:
        raise fail(str(err)) from None
    typer.echo(f"; zone {dns.zone}: rendered by syncd dns render")
    for pool in pools:
        if pool.note:
            typer.echo(f"; {pool.name}: {pool.note}")
    typer.echo(f"; gate: {'open' if verdict.reached else 'closed'}: {verdict.reason}")
    records = desired_records(pools, txt if verdict.reached else None)
    typer.echo(_zone_text(records, dns.ttl), nl=False)


def _retrying() -> Retrying:
    return Retrying(
        retry=retry_if_exception(lambda e: isinstance(e, DnsUpdateError) and e.retryable),
        wait=wait_random_exponential(multiplier=1, max=10),
        stop=stop_after_attempt(4),
        reraise=True,
    )


@dns_app.command("push")
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
    does not have. Failed updates are retried, then reported; every change is recorded."""
    try:
        cfg, dns, inv, db, tree = _inputs(config, inventory, state, source_tree)
        now = time.time()
        verdict, entries, txt, release = plan(
            cfg, dns=dns, inventory=inv, state=db, tree=tree, now=now
        )
        pools = plan_pools(
            entries, fallback_count=dns.fallback_count, default_pool=dns.default_pool
        )
        server = _server(dns)
        want = desired_records(pools, txt if verdict.reached else None)
        keys = sorted({*want, (TXT_NAME, "TXT")})
        held = read_records(server, keys)
        current_txt = (
            TxtRecord.parse(held[(TXT_NAME, "TXT")][0]) if held[(TXT_NAME, "TXT")] else None
        )
        if verdict.reached:
            check_txt(txt, current_txt, release)
            if current_txt and current_txt.versions == txt.versions:
                want.pop((TXT_NAME, "TXT"))  # same release: keep the record as it is
        changes = [
            Change(c.name, c.rdtype, c.add, c.remove, _reason(c, verdict, pools))
            for c in diff(want, {k: v for k, v in held.items() if k in want})
        ]
    except (ConfigError, InventoryError, StoreError, DnsSafetyError, DnsUpdateError) as err:
        raise fail(str(err)) from None
    sent_error = None
    if changes and not dry_run:
        conn = open_db(db)
        try:
            try:
                for attempt in _retrying():
                    with attempt:
                        send_update(server, changes)
                DnsStore(conn).record(now, changes, "sent")
            except DnsUpdateError as err:
                sent_error = str(err)
                DnsStore(conn).record(now, changes, f"failed: {sent_error}")
        finally:
            conn.close()
    result: dict[str, Any] = {
        "gate": {
            "reached": verdict.reached,
            "share": round(verdict.share, 4),
            "reason": verdict.reason,
            "laggards": list(verdict.laggards),
        },
        "changes": [
            {
                "name": c.name,
                "type": c.rdtype,
                "add": list(c.add),
                "remove": list(c.remove),
                "reason": c.reason,
            }
            for c in changes
        ],
        "sent": bool(changes) and not dry_run and sent_error is None,
        "dry_run": dry_run,
        "error": sent_error,
    }
    _print(result, as_json=as_json)
    raise typer.Exit(1 if sent_error else 0)


def _print(result: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result, sort_keys=True))
        return
    gate = result["gate"]
    typer.echo(f"gate {'open' if gate['reached'] else 'closed'}: {gate['reason']}")
    if gate["laggards"] and not gate["reached"]:
        typer.echo("held back by: " + ", ".join(gate["laggards"]))
    verb = "would change" if result["dry_run"] else "change"
    for c in result["changes"]:
        typer.echo(f"{verb} {c['name']} {c['type']}: +{c['add']} -{c['remove']} ({c['reason']})")
    if not result["changes"]:
        typer.echo("the server already holds what it should: nothing sent")
    if result["error"]:
        typer.echo(f"update failed: {result['error']}", err=True)


def _reason(c: Change, verdict: GateVerdict, pools: list[Any]) -> str:
    if c.rdtype == "TXT":
        return f"release announced: {verdict.reason}"
    note = next((p.note for p in pools if p.name == c.name and p.note), None)
    return note or "rotation follows the mirrors that serve the release"
