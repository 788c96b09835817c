"""Bring the rotation and the TXT record in line with what mirrors really serve: gather the
evidence from the record, judge the release gate, plan the pools, and send the authoritative
server only the difference (retried, recorded). Used by ``syncd dns`` and ``syncd publish``."""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from syncd.adapters.dns import DnsServer, DnsUpdateError, read_records, send_update
from syncd.adapters.dnsstore import DnsStore
from syncd.adapters.files import read_inventory, read_release_headers
from syncd.adapters.monitorstore import MonitorStore
from syncd.adapters.publishstore import PublishStore
from syncd.adapters.sqlite import open_db
from syncd.core.config import ConfigError, SyncdConfig
from syncd.core.dnsplan import (
    LOCAL_POOL,
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
from syncd.core.errors import SyncdError
from syncd.core.gate import GateVerdict, MirrorEvidence, evidence, judge, serves_release
from syncd.core.geopools import (
    COUNTRY_DATABASES,
    LocalPolicy,
    Region,
    RegionPool,
    initial_zone_text,
    key_statements,
    local_zone,
    named_conf,
    plan_local,
    view_zone_file,
)
from syncd.core.monitorconfig import DnsConfig


@dataclass(frozen=True)
class DnsUpdate:
    """What an update did: the gate's verdict (None: it failed before judging), the changes
    sent (or, on a dry run, that would be), and the error of a send that failed."""

    gate: GateVerdict | None
    changes: list[Change]
    sent: bool
    dry_run: bool
    error: str | None

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document (and ``dns`` in ``syncd publish --json``)."""
        gate = self.gate
        return {
            "gate": None
            if gate is None
            else {
                "reached": gate.reached,
                "share": round(gate.share, 4),
                "reason": gate.reason,
                "laggards": list(gate.laggards),
            },
            "changes": [
                {
                    "name": c.name,
                    "type": c.rdtype,
                    "add": list(c.add),
                    "remove": list(c.remove),
                    "reason": c.reason,
                    "view": c.view,
                }
                for c in self.changes
            ],
            "sent": self.sent,
            "dry_run": self.dry_run,
            "error": self.error,
        }


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


def gather(
    cfg: SyncdConfig, inventory: Path, state: Path
) -> tuple[list[MirrorEvidence], dict[str, tuple[str, ...]]]:
    """Per mirror what the publish record and the monitor say (judged by the core's
    `evidence`), and its addresses."""
    inv = read_inventory(inventory)
    conn = open_db(state)
    try:
        published = {s.mirror: s for s in PublishStore(conn).mirror_states()}
        monitor = MonitorStore(conn)
        records = monitor.records()
        out, addrs = [], {}
        for m in inv.mirrors:
            checks = [c for c in monitor.checks(m.name, 0.0) if c.ok and c.versions]
            out.append(
                evidence(
                    m.name,
                    m.country,
                    live=m.active and not m.pending,  # pending: not in rotation nor the gate
                    push=published.get(m.name),
                    latest_check=checks[-1] if checks else None,
                    states=[r.state for (name, _), r in records.items() if name == m.name],
                    http_proof=bool(m.http) and cfg.policy.http_check,
                )
            )
            addrs[m.name] = _addresses(m.host)
    finally:
        conn.close()
    return out, addrs


def plan(
    cfg: SyncdConfig, *, dns: DnsConfig, inventory: Path, state: Path, tree: Path, now: float
) -> tuple[GateVerdict, list[MirrorEntry], TxtRecord, dict[str, int]]:
    heads = read_release_headers(tree)
    release = {db: h.version for db, h in heads.items()}
    mirrors, addrs = gather(cfg, inventory, state)
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


def retrying() -> Retrying:
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
    cfg: SyncdConfig,
    dns: DnsConfig,
    *,
    inventory: Path,
    state: Path,
    tree: Path,
    dry_run: bool,
    now: float,
) -> DnsUpdate:
    """Judge the gate at `now` (unix seconds), send the difference unless `dry_run`; return
    what it did.

    Raise ConfigError, InventoryError, StoreError, DnsSafetyError or DnsUpdateError (reading
    the server) before anything is sent; a failed send is retried, then reported in the result.
    """
    verdict, entries, txt, release = plan(
        cfg, dns=dns, inventory=inventory, state=state, tree=tree, now=now
    )
    pools = zone_pools(dns, entries)
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
    # db.local by region: each view's zone is read (signed: the key selects the view) before
    # anything is sent, then updated with the view's key, apart from the rest
    batches: list[tuple[DnsServer, list[Change]]] = [(server, changes)]
    for rp in local_pools(dns, entries) or []:
        vserver = view_server(server, rp.region)
        vwant = desired_records([rp.pool], None)
        vheld = read_records(vserver, sorted(vwant))
        reason = rp.pool.note or "rotation follows the mirrors that serve the release"
        batches.append(
            (
                vserver,
                [
                    Change(c.name, c.rdtype, c.add, c.remove, reason, rp.region.view)
                    for c in diff(vwant, vheld)
                ],
            )
        )
    batches = [(srv, cs) for srv, cs in batches if cs]
    every = [c for _, cs in batches for c in cs]
    error = None
    if every and not dry_run:
        conn = open_db(state)
        try:
            for srv, batch in batches:
                try:
                    for attempt in retrying():
                        with attempt:
                            send_update(srv, batch)
                    DnsStore(conn).record(now, batch, "sent")
                except DnsUpdateError as err:
                    error = error or str(err)
                    DnsStore(conn).record(now, batch, f"failed: {err}")
        finally:
            conn.close()
    return DnsUpdate(verdict, every, bool(every) and not dry_run and error is None, dry_run, error)


def zone_pools(dns: DnsConfig, entries: list[MirrorEntry]) -> list[Pool]:
    """The pools the zone itself holds: every db.XY, and db.local unless it is by region."""
    pools = plan_pools(entries, fallback_count=dns.fallback_count, default_pool=dns.default_pool)
    if dns.local is not None:
        pools = [p for p in pools if p.name != LOCAL_POOL]
    return pools


def geoip_database(policy: LocalPolicy) -> Path | None:
    """The country database BIND would open in geoip_directory, or None when there is none."""
    for name in COUNTRY_DATABASES:
        path = Path(policy.geoip_directory) / name
        if path.is_file():
            return path
    return None


def geoip_warning(policy: LocalPolicy) -> str | None:
    if geoip_database(policy) is not None:
        return None
    return (
        f"no GeoIP2 country database in {policy.geoip_directory} "
        f"({' or '.join(COUNTRY_DATABASES)}): db.local is the default view only, the same "
        "pool for every client (the other views are kept fresh, matched by syncd's keys "
        "alone); install GeoLite2 or DB-IP lite there (docs/monitoring.md)"
    )


def local_pools(dns: DnsConfig, entries: list[MirrorEntry]) -> list[RegionPool] | None:
    """db.local per view, or None when db.local is not by region."""
    if dns.local is None:
        return None
    return plan_local(entries, dns.local, default_pool=dns.default_pool)


def view_server(server: DnsServer, region: Region) -> DnsServer:
    """The same server as reached through `region`'s view: its key, its db.local zone."""
    return replace(
        server,
        key_name=region.key_name(server.key_name),
        update_zone=local_zone(server.zone),
        sign_queries=True,
    )


def gate_after_publish(
    cfg: SyncdConfig,
    dns: DnsConfig,
    *,
    inventory: Path,
    state: Path,
    tree: Path,
    dry_run: bool,
    now: float,
) -> DnsUpdate:
    """The release gate after a publish: `update`, its errors included in the result (never
    raised: the publish is done whatever DNS does)."""
    try:
        return update(
            cfg, dns, inventory=inventory, state=state, tree=tree, dry_run=dry_run, now=now
        )
    except SyncdError as err:
        return DnsUpdate(None, [], False, dry_run, str(err))


@dataclass(frozen=True)
class Rendered:
    """What `render` found: the gate, the zone's pools and its fragment, and db.local by
    region (None: not by region) with the warning of a missing GeoIP database."""

    gate: GateVerdict
    pools: list[Pool]
    text: str
    local: list[RegionPool] | None
    warning: str | None


def render(
    cfg: SyncdConfig, dns: DnsConfig, *, inventory: Path, state: Path, tree: Path, now: float
) -> Rendered:
    """The gate, the pools, and the zone fragment the server should hold at `now`."""
    verdict, entries, txt, _ = plan(
        cfg, dns=dns, inventory=inventory, state=state, tree=tree, now=now
    )
    pools = zone_pools(dns, entries)
    return Rendered(
        verdict,
        pools,
        zone_text(desired_records(pools, txt if verdict.reached else None), dns.ttl),
        local_pools(dns, entries),
        None if dns.local is None else geoip_warning(dns.local),
    )


def write_named_conf(dns: DnsConfig, local: list[RegionPool], directory: Path) -> list[Path]:
    """Write the views' named.conf fragment, the view keys (mode 0600: they hold the update
    key's secret) and each view's db.local zone file that does not exist yet (an existing one
    is BIND's, with its journal: never rewritten) into `directory`; return what was written."""
    if dns.local is None:
        raise ConfigError("no [dns.local] table in syncd.toml: db.local is not by region")
    directory.mkdir(parents=True, exist_ok=True)
    regions = [rp.region for rp in local]
    keys = directory / "pushsync-view-keys.conf"
    conf = directory / "pushsync-views.conf"
    secret = server_of(dns).key_secret
    text = key_statements([r.key_name(dns.key_name) for r in regions], dns.key_algorithm, secret)
    try:  # never through a symlink: the secret goes only where it is meant to
        fd = os.open(keys, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    except OSError as err:
        raise ConfigError(
            f"cannot write the view keys to {keys}: {err.strerror}: remove it if it is a "
            "symlink, or choose another --named-conf directory"
        ) from None
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)
    conf.write_text(
        named_conf(
            regions,
            zone=dns.zone,
            key_name=dns.key_name,
            policy=dns.local,
            keys_file=str(keys),
            zone_dir=str(directory),
            geoip=geoip_database(dns.local) is not None,
        )
    )
    written = [conf, keys]
    for rp in local:
        path = directory / view_zone_file(rp.region, dns.zone)
        if path.exists():
            continue
        apex = {("@", t): v for (_, t), v in desired_records([rp.pool], None).items()}
        path.write_text(initial_zone_text(dns.zone, dns.local, dns.ttl) + zone_text(apex, dns.ttl))
        written.append(path)
    return written
