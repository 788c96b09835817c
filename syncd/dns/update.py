"""Bring the rotation and the TXT record in line with what mirrors really serve: gather the
evidence from the record, judge the release gate, plan the pools, and run the steps of
``syncd.dns.steps`` against the authoritative servers (shrink, settle, announce: sent as
differences, retried, recorded). Used by ``syncd dns``, ``syncd publish`` and the monitor."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from syncd.dns.config import DnsConfig
from syncd.dns.evidence import gather_evidence
from syncd.dns.gate import (
    GateVerdict,
    Gathered,
    MirrorEvidence,
    gate_json,
    judge,
    live,
    serves_release,
)
from syncd.dns.geopools import (
    COUNTRY_DATABASES,
    LocalPolicy,
    Region,
    RegionPool,
    initial_zone_text,
    key_statements,
    local_zone,
    named_conf,
    plan_local,
    regions,
    view_zone_file,
)
from syncd.dns.plan import (
    LOCAL_POOL,
    TXT_NAME,
    Change,
    DnsSafetyError,
    MirrorEntry,
    Pool,
    TxtRecord,
    check_txt,
    desired_records,
    plan_pools,
    pool_countries,
)
from syncd.dns.server import (
    DnsServer,
    DnsUpdateError,
    names_held,
    read_held,
    rotation_addresses,
    send_update,
    serial,
)
from syncd.dns.steps import (
    HeldSet,
    Step,
    StepResult,
    announce_not_before,
    explain_wait,
    failed_step,
    pool_changes,
    serial_newer,
    target_versions,
)
from syncd.dns.store import LOCK_WAIT_S, ROTATION_LOCK_WAIT_S, DnsStore, dns_lock
from syncd.errors import ConfigError, SyncdError
from syncd.files import read_secret_file, write_atomic
from syncd.inventory.model import Inventory
from syncd.release.tree import SourceTree
from syncd.settings import SyncdConfig
from syncd.sqlite import open_db
from syncd.text import clean, internal_error


@dataclass(frozen=True)
class DnsUpdate:
    """What an update did: the gate's verdict (None: it failed before judging), the changes
    sent (or, on a dry run, that would be), each step's result in order (see
    ``syncd.dns.steps``), the error of the step that failed, and when the TXT moved."""

    gate: GateVerdict | None
    changes: list[Change]
    sent: bool
    dry_run: bool
    error: str | None
    steps: tuple[StepResult, ...] = ()
    announced: str | None = None  # why the TXT moved when it did
    problems: tuple[str, ...] = ()  # mirrors left out of the rotation for a reason of their own

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document (and ``dns`` in ``syncd publish --json``)."""
        gate = self.gate
        return {
            "gate": None if gate is None else gate_json(gate),
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
            "steps": [
                {"step": r.step.value, "ok": r.ok, "detail": r.detail, "at": r.at}
                for r in self.steps
            ],
            "announced": self.announced,
            "problems": list(self.problems),
            "sent": self.sent,
            "dry_run": self.dry_run,
            "error": self.error,
        }


@dataclass(frozen=True)
class Planned:
    """The inputs of one update, read once: the release, each mirror's evidence and
    addresses, the inventory's countries, the gate's verdict, and the TXT it would announce."""

    release: dict[str, int]
    mirrors: list[MirrorEvidence]
    addresses: dict[str, tuple[str, ...]]
    countries: set[str]
    verdict: GateVerdict
    txt: TxtRecord
    problems: tuple[str, ...]


def maintenance_now(
    conn: sqlite3.Connection, cfg: SyncdConfig, inv: Inventory, now: float
) -> dict[str, str]:
    """The mirrors whose maintenance window is in effect at `now`, with why (see
    `syncd.monitor.maintenance`): taken out of the rotation one monitor interval plus the
    pools' TTL (as configured, or as the servers still hold it) before the window starts."""
    from syncd.monitor.maintenance import describe
    from syncd.monitor.query import windows_in_effect

    windows = windows_in_effect(
        conn,
        inv,
        now,
        interval_s=cfg.monitor.interval_s,
        pool_ttl=cfg.dns.pool_ttl if cfg.dns is not None else 0,
        max_s=cfg.monitor.maintenance_max_days * 86_400,
    )
    return {name: describe(w, now) for name, w in windows.items()}


def gather(
    cfg: SyncdConfig,
    inv: Inventory,
    state: Path,
    now: float | None = None,
    judged: Gathered | None = None,
) -> tuple[list[MirrorEvidence], dict[str, tuple[str, ...]], set[str], list[str]]:
    """Per mirror what the publish record and the monitor say (judged by the core's
    `evidence`) and its addresses fit for a pool; the inventory's countries (every mirror's,
    whatever its state); and a note per mirror left out for a reason of its own. Whatever goes
    wrong with one mirror's evidence or address keeps that mirror out of the rotation, never
    the others; what goes wrong for all of them (the record, this host's resolver) is raised:
    it would empty the pools for a fault of ours. `judged`: the evidence a monitor pass
    judged from its snapshot (the record is then not read again); None: read it."""
    gathered = judged if judged is not None else _judged(cfg, inv, state, now)
    addrs: dict[str, tuple[str, ...]] = {}
    problems, unresolved = [], []
    mirrors = list(gathered.mirrors)  # the caller's judgement stays as it was
    for m, found in zip(inv.mirrors, gathered.mirrors, strict=True):
        broken = gathered.broken.get(m.name)
        try:
            addrs[m.name], notes = (
                ((), [broken])
                if broken
                else rotation_addresses(m.host, allow_private=inv.allow_private_addresses)
            )
        except Exception as err:  # that mirror's own: it serves nothing as far as the gate knows
            addrs[m.name], notes = (), [internal_error(err)]
            i = inv.mirrors.index(m)
            mirrors[i] = MirrorEvidence(m.name, m.country, live(m), None, None, False)
        if found.active and not addrs[m.name] and not notes:
            unresolved.append(m.name)
            notes = [f"{m.host!r} has no address"]
        problems += [clean(f"{m.name}: {n}") for n in notes if found.active]
    out = mirrors
    live_count = sum(live(m) for m in inv.mirrors)
    if len(unresolved) >= MIN_UNRESOLVED and len(unresolved) * 2 > live_count:
        raise DnsSafetyError(
            f"{len(unresolved)} of {live_count} mirrors' names have no address: this host's "
            "resolver is more likely failing than the mirrors; nothing sent (check "
            "/etc/resolv.conf, then run 'syncd dns push')"
        )
    return out, addrs, {m.country.lower() for m in inv.mirrors}, problems


MIN_UNRESOLVED = 2  # as the monitor's outage guard: below this, a name is one mirror's problem


def _judged(cfg: SyncdConfig, inv: Inventory, state: Path, now: float | None) -> Gathered:
    """The gate's evidence read from the record (once) and judged."""
    conn = open_db(state)
    try:
        held = maintenance_now(conn, cfg, inv, time.time() if now is None else now)
        return gather_evidence(conn, inv, http_check=cfg.policy.http_check, maintenance=held)
    finally:
        conn.close()


def plan(
    cfg: SyncdConfig,
    *,
    dns: DnsConfig,
    inventory: Inventory,
    state: Path,
    source: SourceTree,
    now: float,
    judged: Gathered | None = None,
) -> Planned:
    release = source.versions
    mirrors, addrs, countries, problems = gather(cfg, inventory, state, now, judged)
    verdict = judge(mirrors, release, dns.gate_share)
    flevel = source.functionality
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
    return Planned(release, mirrors, addrs, countries, verdict, txt, tuple(problems))


def entries_for(planned: Planned, target: dict[str, int]) -> list[MirrorEntry]:
    """The active mirrors as the pools see them: eligible when they serve `target`."""
    out = []
    for m in planned.mirrors:
        if not m.active:
            continue
        ok = serves_release(m, target)
        why = m.maintenance or "does not serve what the TXT announces"
        out.append(
            MirrorEntry(m.name, m.country, planned.addresses.get(m.name, ()), ok, "" if ok else why)
        )
    return out


def server_of(dns: DnsConfig) -> DnsServer:
    """The primary as syncd.toml names it, its TSIG secret read as ssh reads a private key
    (refused when group or others may read it, or another user owns it)."""
    secret = read_secret_file(
        dns.key_secret_file,
        "[dns] key_secret_file",
        missing="write the TSIG secret there (mode 600), or point key_secret_file at it",
    ).strip()
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


ROTATION = "rotation follows the mirrors that serve what the TXT announces"


def _pool_reason(name: str, pools: list[Pool]) -> str:
    note = next((p.note for p in pools if p.name == name and p.note), None)
    return note or ROTATION


@dataclass
class Clock:
    """Time as the update sees it: the wall clock to record and compare with TTLs, and a
    sleep (both injected: tests and the benchmark pass their own)."""

    now: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep


def _pools_for(
    planned: Planned,
    dns: DnsConfig,
    server: DnsServer,
    store: DnsStore,
    target: dict[str, int],
) -> tuple[list[Pool], list[RegionPool] | None]:
    """Every pool the zone and the views hold or should hold: each db.XY of the inventory's
    countries and of the names the zone holds, and each view's db.local of the inventory's
    countries and of the views named.conf was rendered with or changes went to."""
    held_names = names_held(server)
    countries = planned.countries | pool_countries(
        held_names if held_names is not None else store.names()
    )
    entries = entries_for(planned, target)
    local = local_pools(dns, entries, planned.countries, store.views())
    return zone_pools(dns, entries, countries), local


def update(
    cfg: SyncdConfig,
    dns: DnsConfig,
    *,
    inventory: Inventory,
    state: Path,
    source: SourceTree,
    dry_run: bool,
    now: float,
    announce: bool = True,
    clock: Clock | None = None,
    lock_wait_s: float = LOCK_WAIT_S,
    lock_sleep: Callable[[float], None] = time.sleep,
    judged: Gathered | None = None,
) -> DnsUpdate:
    """Judge the gate at `now` (unix seconds), then, unless `dry_run`, run the steps of
    ``syncd.dns.steps``: shrink every pool in every view, settle on every authoritative
    server, and (when `announce` and the gate is open) wait out the removed records' TTL and
    move the TXT. Return what it did; a failed step ends the sequence and is the result's error.
    Another updater holding DNS is waited for at most `lock_wait_s` (then DnsBusy).
    `judged`: the mirrors' evidence a monitor pass judged from its snapshot (see `gather`).

    Raise ConfigError, InventoryError, StoreError, DnsSafetyError or DnsUpdateError (reading
    the server) before anything is sent.
    """
    clock = clock or Clock()
    planned = plan(
        cfg, dns=dns, inventory=inventory, state=state, source=source, now=now, judged=judged
    )
    server = server_of(dns)
    held_by: contextlib.AbstractContextManager[None] = (
        contextlib.nullcontext()
        if dry_run
        else dns_lock(state, wait_s=lock_wait_s, sleep=lock_sleep)
    )
    with held_by:  # what is read below stays true until the steps are done
        return _update(
            planned, dns, server, state, dry_run=dry_run, now=now, announce=announce, clock=clock
        )


def current_txt(held: HeldSet) -> TxtRecord | None:
    """The TXT record the server holds (None: none yet); raise DnsSafetyError when it holds
    more than one value (no updater leaves it so: fix it by hand)."""
    if len(held.values) > 1:
        raise DnsSafetyError(
            f"{TXT_NAME} holds {len(held.values)} TXT values ({', '.join(held.values)}): "
            "leave the newest one with nsupdate, then run 'syncd dns push' again"
        )
    return TxtRecord.parse(held.values[0]) if held.values else None


def _update(
    planned: Planned,
    dns: DnsConfig,
    server: DnsServer,
    state: Path,
    *,
    dry_run: bool,
    now: float,
    announce: bool,
    clock: Clock,
) -> DnsUpdate:
    txt_held = read_held(server, [(TXT_NAME, "TXT")])[(TXT_NAME, "TXT")]
    current = current_txt(txt_held)
    gate_open = announce and planned.verdict.reached
    target = target_versions(
        planned.release, current.versions if current else None, gate_open=gate_open
    )
    conn = open_db(state)
    try:
        store = DnsStore(conn)
        pools, local = _pools_for(planned, dns, server, store, target)
        batches = _shrink_batches(dns, server, pools, local, _inventory_views(dns, planned))
        txt_change = None
        if gate_open and (current is None or current.versions != planned.txt.versions):
            # never backwards, not even in time (a heartbeat may have stamped it since)
            txt = (
                replace(planned.txt, record_time=max(planned.txt.record_time, current.record_time))
                if current
                else planned.txt
            )
            check_txt(txt, current, planned.release)
            txt_change = Change(
                TXT_NAME,
                "TXT",
                (f'"{txt.render()}"',),
                txt_held.values,
                f"release announced: {planned.verdict.reason}",
                ttl=dns.ttl,
                held_ttl=txt_held.ttl,
            )
        every = [c for _, cs in batches for c in cs] + ([txt_change] if txt_change else [])
        if dry_run:
            return DnsUpdate(planned.verdict, every, False, True, None, problems=planned.problems)
        run = _Sequence(dns, server, batches, store, clock)
        run.shrink()
        if run.ok:
            run.settle()
        if run.ok and txt_change is not None:
            run.announce(txt_change, gate_at=now)
    finally:
        conn.close()
    failed = failed_step(run.results)
    return DnsUpdate(
        planned.verdict,
        run.sent,
        bool(run.sent) and failed is None,
        False,
        None if failed is None else f"{failed.step.value} step failed: {failed.detail}",
        tuple(run.results),
        run.announced,
        planned.problems,
    )


def _inventory_views(dns: DnsConfig, planned: Planned) -> set[str]:
    """The views the inventory's countries make (those named.conf renders now)."""
    if dns.local is None:
        return set()
    return {r.view for r in regions(planned.countries, dns.local)}


def _shrink_batches(
    dns: DnsConfig,
    server: DnsServer,
    pools: list[Pool],
    local: list[RegionPool] | None,
    current_views: set[str],
) -> list[tuple[DnsServer, list[Change]]]:
    """Step (a)'s updates: the zone's pools, and each view's db.local (each view's zone is read
    signed, since the key selects the view, before anything is sent). A view from before
    (not in `current_views`) whose key the server no longer knows is gone from named.conf:
    no client can reach it, and it is left out."""
    want = desired_records(pools, None)
    held = read_held(server, sorted(want))
    batches = [(server, _reasoned(pool_changes(want, held, ttl=dns.pool_ttl), pools))]
    for rp in local or []:
        vserver = view_server(server, rp.region)
        vwant = desired_records([rp.pool], None)
        try:
            vheld = read_held(vserver, sorted(vwant))
        except DnsUpdateError as err:
            if err.key_rejected and rp.region.view not in current_views:
                continue
            raise
        reason = rp.pool.note or ROTATION
        batches.append(
            (
                vserver,
                pool_changes(vwant, vheld, ttl=dns.pool_ttl, reason=reason, view=rp.region.view),
            )
        )
    return batches


def _reasoned(changes: list[Change], pools: list[Pool]) -> list[Change]:
    return [replace(c, reason=_pool_reason(c.name, pools)) for c in changes]


class _Sequence:
    """The steps as they run: what was sent, each step's result, and when the TXT moved."""

    def __init__(
        self,
        dns: DnsConfig,
        server: DnsServer,
        batches: list[tuple[DnsServer, list[Change]]],
        store: DnsStore,
        clock: Clock,
    ) -> None:
        self.dns, self.server, self.batches, self.store, self.clock = (
            dns,
            server,
            batches,
            store,
            clock,
        )
        self.sent: list[Change] = []
        self.results: list[StepResult] = []
        self.announced: str | None = None

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def _send(self, srv: DnsServer, batch: list[Change]) -> str | None:
        # recorded before it goes: an update the server applied without our hearing (a lost
        # answer, a kill) still counts when the TXT waits out the removed records' TTL
        ids = self.store.record(self.clock.now(), batch, "sending")
        try:
            for attempt in retrying():
                with attempt:
                    send_update(srv, batch)
        except DnsUpdateError as err:
            self.store.set_outcome(ids, f"failed: {err}")
            return str(err)
        self.store.set_outcome(ids, "sent")
        self.sent += batch
        return None

    def shrink(self) -> None:
        """(a): every batch is sent even when one fails (each only makes a pool more right);
        the step fails when any did, and names the views."""
        errors = []
        for srv, batch in self.batches:
            if batch:
                error = self._send(srv, batch)
                if error:
                    where = f"view {batch[0].view}" if batch[0].view else f"zone {srv.zone}"
                    errors.append(f"{where}: {error}")
        count = sum(len(b) for _, b in self.batches)
        detail = "; ".join(errors) if errors else f"{count} pool change(s) sent"
        self.results.append(StepResult(Step.SHRINK, not errors, detail, self.clock.now()))

    def settle(self, *, after_txt: bool = False) -> None:
        """(b): every authoritative server serves the primary's serial, in every zone we
        update (the main zone, each view's db.local), within settle_timeout_s. `after_txt`:
        the TXT has moved on the primary already (the settle that ends the announce)."""
        deadline = self.clock.now() + self.dns.settle_timeout_s
        lagging: list[str] = []
        for srv, _ in self.batches:
            try:
                want = serial(srv)
            except DnsUpdateError as err:  # what was sent is recorded: the step says it
                detail = f"cannot read the primary's serial: {err}"
                self.results.append(StepResult(Step.SETTLE, False, detail, self.clock.now()))
                return
            for host, port in self.dns.secondary_servers():
                if not self._wait_serial(srv, host, port, want, deadline):
                    zone = srv.update_zone or srv.zone
                    lagging.append(
                        f"{host}:{port} ({zone}{' via ' + srv.key_name if srv.update_zone else ''})"
                    )
        at = self.clock.now()
        if lagging:
            detail = (
                f"secondary {', '.join(lagging)} did not serve the new serial within "
                f"{self.dns.settle_timeout_s:.0f} s: "
                + (
                    "it still serves the old TXT; check its zone transfers"
                    if after_txt
                    else "the TXT stays; check its zone transfers"
                )
            )
            self.results.append(StepResult(Step.SETTLE, False, detail, at))
            return
        self.store.settle(at)
        servers = 1 + len(self.dns.secondaries)
        self.results.append(
            StepResult(Step.SETTLE, True, f"{servers} server(s) serve the change", at)
        )

    def _wait_serial(
        self, srv: DnsServer, host: str, port: int, want: int, deadline: float
    ) -> bool:
        while True:
            try:
                if serial_newer(serial(srv, host, port), want):
                    return True
            except DnsUpdateError:
                pass  # a secondary down is lagging: asked again until the deadline
            if self.clock.now() >= deadline:
                return False
            self.clock.sleep(min(0.2, max(0.0, deadline - self.clock.now())))

    def announce(self, change: Change, *, gate_at: float) -> None:
        """(c): wait until every removal's TTL has passed since it settled, then move the TXT
        and see it served everywhere."""
        start = self.clock.now()
        removals = self.store.removals(start, default_ttl=self.dns.ttl)
        not_before = announce_not_before(removals)
        wait = not_before - start
        if wait > MAX_TTL:
            detail = (
                f"a removed record's TTL keeps it in caches until {wait:.0f} s from now: "
                "lower the records' TTL ([dns] pool_ttl) and run 'syncd dns push' later"
            )
            self.results.append(StepResult(Step.ANNOUNCE, False, detail, start))
            return
        if wait > 0:
            self.clock.sleep(wait)
        error = self._send(self.server, [change])
        at = self.clock.now()
        if error:
            self.results.append(StepResult(Step.ANNOUNCE, False, error, at))
            return
        self.settle(after_txt=True)  # the TXT served by every server: release-to-announce ends
        held_ttl = max((r.ttl for r in removals if r.settled_at + r.ttl == not_before), default=0)
        daily = TxtRecord.parse(change.add[0]).daily
        self.announced = explain_wait(
            gate_at, at, not_before, self.dns.pool_ttl, held_ttl, daily=daily
        )
        self.results.append(StepResult(Step.ANNOUNCE, True, f"TXT {change.add[0]}", at))


MAX_TTL = 3600.0  # the longest wait for a removed record's TTL before the TXT may move


def zone_pools(
    dns: DnsConfig, entries: list[MirrorEntry], countries: set[str] | None = None
) -> list[Pool]:
    """The pools the zone itself holds: every db.XY (each of `countries` too), and db.local
    unless it is by region."""
    pools = plan_pools(
        entries,
        fallback_count=dns.fallback_count,
        default_pool=dns.default_pool,
        countries=countries or (),
    )
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


def local_pools(
    dns: DnsConfig,
    entries: list[MirrorEntry],
    countries: set[str] | None = None,
    views: set[str] | None = None,
) -> list[RegionPool] | None:
    """db.local per view, or None when db.local is not by region: the views of the entries'
    countries, of `countries` (the inventory's, whatever its mirrors' state) and of `views`
    (those the server may hold from before)."""
    if dns.local is None:
        return None
    return plan_local(
        entries,
        dns.local,
        default_pool=dns.default_pool,
        countries=countries or (),
        views=views or (),
    )


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
    inventory: Inventory,
    state: Path,
    source: SourceTree,
    dry_run: bool,
    now: float,
    announce: bool = True,
    lock_wait_s: float = LOCK_WAIT_S,
    lock_sleep: Callable[[float], None] = time.sleep,
    judged: Gathered | None = None,
) -> DnsUpdate:
    """The release gate after a publish (or, with `announce` False, the rotation after a
    monitor pass, with the evidence it `judged`: `rotation`): `update`, its errors included in
    the result (never raised: the publish or the pass is done whatever DNS does)."""
    try:
        return update(
            cfg,
            dns,
            inventory=inventory,
            state=state,
            source=source,
            dry_run=dry_run,
            now=now,
            announce=announce,
            lock_wait_s=lock_wait_s,
            lock_sleep=lock_sleep,
            judged=judged,
        )
    except SyncdError as err:
        return DnsUpdate(None, [], False, dry_run, clean(str(err)))
    except Exception as err:
        return DnsUpdate(None, [], False, dry_run, internal_error(err))


def rotation(
    cfg: SyncdConfig,
    dns: DnsConfig,
    *,
    state: Path,
    clock: Callable[[], float] = time.time,
    lock_wait_s: float = ROTATION_LOCK_WAIT_S,
    lock_sleep: Callable[[float], None] = time.sleep,
) -> Callable[[Inventory, SourceTree, Gathered], DnsUpdate]:
    """The monitor pass's DNS step: the pools brought in line with what the pass found (the
    mirrors' evidence it `judged` from its snapshot: the record is not read again), never the
    TXT, its errors in the result. It waits for another updater (a publish's gate) at most
    `lock_wait_s`, then leaves the rotation to the next pass."""

    def rotate(inventory: Inventory, source: SourceTree, judged: Gathered) -> DnsUpdate:
        return gate_after_publish(
            cfg,
            dns,
            inventory=inventory,
            state=state,
            source=source,
            dry_run=False,
            now=clock(),
            announce=False,
            lock_wait_s=lock_wait_s,
            lock_sleep=lock_sleep,
            judged=judged,
        )

    return rotate


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
    cfg: SyncdConfig,
    dns: DnsConfig,
    *,
    inventory: Inventory,
    state: Path,
    source: SourceTree,
    now: float,
) -> Rendered:
    """The gate, the pools, and the zone fragment the server should hold at `now` once the
    gate's steps are done (without the server: the pools follow the release when the gate is
    open, else every mirror that serves it or the release before it cannot be told apart)."""
    planned = plan(cfg, dns=dns, inventory=inventory, state=state, source=source, now=now)
    entries = entries_for(planned, planned.release)
    pools = zone_pools(dns, entries, planned.countries)
    return Rendered(
        planned.verdict,
        pools,
        zone_text(
            desired_records(pools, planned.txt if planned.verdict.reached else None), dns.ttl
        ),
        local_pools(dns, entries, planned.countries),
        None if dns.local is None else geoip_warning(dns.local),
    )


def write_named_conf(
    dns: DnsConfig,
    local: list[RegionPool],
    directory: Path,
    *,
    state: Path | None = None,
    now: float = 0.0,
) -> list[Path]:
    """Write the views' named.conf fragment, the view keys (mode 0600: they hold the update
    key's secret) and each view's db.local zone file that does not exist yet (an existing one
    is BIND's, with its journal: never rewritten) into `directory`; return what was written.
    With `state`, the views are recorded there first: every later push manages each of them,
    even once the inventory no longer makes it."""
    if dns.local is None:
        raise ConfigError("no [dns.local] table in syncd.toml: db.local is not by region")
    directory.mkdir(parents=True, exist_ok=True)
    views = [rp.region for rp in local]
    if state is not None:
        conn = open_db(state)
        try:
            DnsStore(conn).note_views([r.view for r in views], now)
        finally:
            conn.close()
    keys = directory / "pushsync-view-keys.conf"
    conf = directory / "pushsync-views.conf"
    secret = server_of(dns).key_secret
    text = key_statements([r.key_name(dns.key_name) for r in views], dns.key_algorithm, secret)
    # atomically, mode 0600 from its creation; a symlink in its place is replaced, never
    # followed: the secret goes only where it is meant to
    _write(keys, text, 0o600)
    _write(
        conf,
        named_conf(
            views,
            zone=dns.zone,
            key_name=dns.key_name,
            policy=dns.local,
            keys_file=str(keys),
            zone_dir=str(directory),
            geoip=geoip_database(dns.local) is not None,
        ),
        0o644,
    )
    written = [conf, keys]
    for rp in local:
        path = directory / view_zone_file(rp.region, dns.zone)
        if path.exists():
            continue
        apex = {("@", t): v for (_, t), v in desired_records([rp.pool], None).items()}
        _write(path, initial_zone_text(dns.zone, dns.local, dns.ttl) + zone_text(apex, dns.ttl))
        written.append(path)
    return written


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    try:
        write_atomic(path, text, mode)
    except OSError as err:
        raise ConfigError(
            f"cannot write {path}: {err.strerror}: choose another --named-conf directory"
        ) from None
