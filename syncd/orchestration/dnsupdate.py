"""Bring the rotation and the TXT record in line with what mirrors really serve: gather the
evidence from the record, judge the release gate, plan the pools, and send the authoritative
server only the difference (retried, recorded). Used by ``syncd dns`` and ``syncd publish``."""

from __future__ import annotations

import ipaddress
import socket
import time
from pathlib import Path
from typing import Any

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from pushwire.cvd import parse_header
from syncd.adapters.dns import DnsServer, DnsUpdateError, read_records, send_update
from syncd.adapters.dnsstore import DnsStore
from syncd.adapters.files import read_cvd_headers, read_inventory
from syncd.adapters.monitorstore import MonitorStore
from syncd.adapters.publishstore import PublishStore
from syncd.adapters.sqlite import open_db
from syncd.core.config import ConfigError, SyncdConfig
from syncd.core.dnsplan import (
    TXT_NAME,
    Change,
    MirrorEntry,
    Pool,
    TxtRecord,
    check_txt,
    desired_records,
    diff,
    plan_pools,
)
from syncd.core.freshness import State
from syncd.core.gate import GateVerdict, MirrorEvidence, judge, serves_release
from syncd.core.monitorconfig import DnsConfig


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
            live = m.active and not m.pending  # pending: not yet in rotation, not in the gate
            out.append(MirrorEvidence(m.name, m.country, live, reported, served, fresh))
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


def server_of(dns: DnsConfig) -> DnsServer:
    try:
        secret = dns.key_secret_file.read_text().strip()
    except OSError as err:
        raise ConfigError(f"[dns] key_secret_file {dns.key_secret_file}: {err.strerror}") from None
    return DnsServer(
        dns.server, dns.port, dns.zone, dns.key_name, secret, dns.key_algorithm, ttl=dns.ttl
    )


def zone_text(records: dict[tuple[str, str], tuple[str, ...]], ttl: int) -> str:
    import dns.rrset

    lines = []
    for (name, rdtype), values in sorted(records.items()):
        if values:
            rrset = dns.rrset.from_text_list(name, ttl, "IN", rdtype, list(values))
            lines.append(rrset.to_text())
    return "\n".join(lines) + "\n"


def _retrying() -> Retrying:
    return Retrying(
        retry=retry_if_exception(lambda e: isinstance(e, DnsUpdateError) and e.retryable),
        wait=wait_random_exponential(multiplier=1, max=10),
        stop=stop_after_attempt(4),
        reraise=True,
    )


def _reason(c: Change, verdict: GateVerdict, pools: list[Pool]) -> str:
    if c.rdtype == "TXT":
        return f"release announced: {verdict.reason}"
    note = next((p.note for p in pools if p.name == c.name and p.note), None)
    return note or "rotation follows the mirrors that serve the release"


def update(
    cfg: SyncdConfig, dns: DnsConfig, *, inventory: Path, state: Path, tree: Path, dry_run: bool
) -> dict[str, Any]:
    """Judge the gate, send the difference unless `dry_run`; return the JSON-ready result.

    Raise ConfigError, InventoryError, StoreError, DnsSafetyError or DnsUpdateError (reading
    the server) before anything is sent; a failed send is retried, then reported in the result.
    """
    now = time.time()
    verdict, entries, txt, release = plan(
        cfg, dns=dns, inventory=inventory, state=state, tree=tree, now=now
    )
    pools = plan_pools(entries, fallback_count=dns.fallback_count, default_pool=dns.default_pool)
    server = server_of(dns)
    want = desired_records(pools, txt if verdict.reached else None)
    held = read_records(server, sorted({*want, (TXT_NAME, "TXT")}))
    current = TxtRecord.parse(held[(TXT_NAME, "TXT")][0]) if held[(TXT_NAME, "TXT")] else None
    if verdict.reached:
        check_txt(txt, current, release)
        if current and current.versions == txt.versions:
            want.pop((TXT_NAME, "TXT"))  # same release: keep the record as it is
    changes = [
        Change(c.name, c.rdtype, c.add, c.remove, _reason(c, verdict, pools))
        for c in diff(want, {k: v for k, v in held.items() if k in want})
    ]
    error = None
    if changes and not dry_run:
        conn = open_db(state)
        try:
            try:
                for attempt in _retrying():
                    with attempt:
                        send_update(server, changes)
                DnsStore(conn).record(now, changes, "sent")
            except DnsUpdateError as err:
                error = str(err)
                DnsStore(conn).record(now, changes, f"failed: {error}")
        finally:
            conn.close()
    return {
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
        "sent": bool(changes) and not dry_run and error is None,
        "dry_run": dry_run,
        "error": error,
    }


def render(
    cfg: SyncdConfig, dns: DnsConfig, *, inventory: Path, state: Path, tree: Path
) -> tuple[GateVerdict, list[Pool], str]:
    """The gate, the pools, and the zone fragment the server should hold now."""
    verdict, entries, txt, _ = plan(
        cfg, dns=dns, inventory=inventory, state=state, tree=tree, now=time.time()
    )
    pools = plan_pools(entries, fallback_count=dns.fallback_count, default_pool=dns.default_pool)
    return (
        verdict,
        pools,
        zone_text(desired_records(pools, txt if verdict.reached else None), dns.ttl),
    )
