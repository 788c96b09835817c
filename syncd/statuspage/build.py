"""One monitor pass's snapshot of the record, turned into what the page and the metrics show:
a row per mirror, each mirror's history, the gate, the recent publish runs. Pure: the
snapshot (`syncd.monitor.snapshot`), the inventory, the release and the gate's verdict in;
plain values out, rendered by `site` and `metrics`."""

from __future__ import annotations

from collections.abc import Mapping

from syncd.dns.gate import GateVerdict
from syncd.inventory.model import Inventory
from syncd.monitor.freshness import Release, State, figures, worst
from syncd.monitor.maintenance import INVENTORY, Window
from syncd.monitor.snapshot import DAY, HISTORY_DAYS, Snapshot
from syncd.statuspage.metrics import MetricsSnapshot, RunFacts
from syncd.statuspage.rows import Maintenance, MirrorStatus
from syncd.statuspage.site import (
    FamilyView,
    MirrorView,
    RunView,
    Site,
    state_spans,
)
from syncd.statuspage.traffic import TrafficView, country_views, mirror_view


def status_rows(
    countries: Mapping[str, str],
    snap: Snapshot,
    skipped: Mapping[str, str],
    windows: Mapping[str, Window] | None = None,
) -> list[MirrorStatus]:
    """A row per checked mirror (name -> country, in order), then one per mirror not checked
    (name -> why); `windows`: the maintenance windows in effect, by mirror."""
    now = snap.now
    shown = {
        n: Maintenance(w.starts, w.ends, w.reason, "team" if w.origin == INVENTORY else "admin")
        for n, w in (windows or {}).items()
    }
    last_push = {name: s.outcome for name, s in snap.published.items()}
    rows = []
    for name, country in countries.items():
        recs = snap.mirror_records(name)
        checks = snap.mirror_checks(name, now - 7 * DAY)
        ok = [c for c in checks if c.ok and c.timestamp is not None]
        latest = ok[-1] if ok else None
        week, day = figures(checks, now - 7 * DAY), figures(checks, now - DAY)
        changes = snap.changes.get(name, [])
        rec = worst(recs) if recs else None
        rows.append(
            MirrorStatus(
                name=name,
                country=country,
                state=rec.state.value if rec else "unchecked",
                since=rec.since if rec and rec.state is not State.UNKNOWN else None,
                age_s=(now - latest.timestamp) if latest and latest.timestamp else None,
                served=dict(latest.versions or {}) if latest else {},
                completion_24h=day.completion if day.checks else None,
                completion_7d=week.completion if week.checks else None,
                mean_delay_7d_s=week.mean_delay_s,
                score=week.score,
                last_push=last_push.get(name),
                reason=changes[0].reason if changes else "",
                maintenance=shown.get(name),
            )
        )
    for name, why in skipped.items():
        rows.append(
            MirrorStatus(
                name,
                "-",
                why,
                None,
                None,
                {},
                None,
                None,
                None,
                None,
                last_push.get(name),
                maintenance=shown.get(name),
            )
        )
    return rows


def _runs(snap: Snapshot) -> dict[str, list[RunView]]:
    runs: dict[str, list[RunView]] = {}
    for run in snap.runs:
        for t in snap.run_targets.get(run.run_id, []):
            runs.setdefault(t.mirror, []).append(
                RunView(
                    run.run_id,
                    run.kind,
                    run.started_at,
                    t.finished_at,
                    t.outcome,
                    t.attempts,
                    t.error,
                )
            )
    return runs


def site(
    inv: Inventory,
    rows: list[MirrorStatus],
    snap: Snapshot,
    *,
    release: Release,
    gate_share: float | None,
    verdict: GateVerdict | None,
    suspect: str | None,
) -> Site:
    """What the status site shows: the rows, each mirror's last HISTORY_DAYS, the gate."""
    now = snap.now
    since = now - HISTORY_DAYS * DAY
    runs = _runs(snap)
    by_name = {m.name: m for m in inv.mirrors}
    traffic = traffic_views(snap)
    views = []
    for row in rows:
        m = by_name.get(row.name)
        checks, states = snap.checks.get(row.name, {}), snap.states.get(row.name, {})
        families = []
        for (name, fam), rec in sorted(snap.records.items()):
            if name != row.name:
                continue
            known = rec.state is not State.UNKNOWN
            spans = state_spans(states.get(fam, []), rec.state.value, now)
            families.append(
                FamilyView(
                    fam,
                    rec.state.value,
                    rec.since if known else None,
                    tuple(c for c in checks.get(fam, []) if c.at >= since),
                    spans,
                )
            )
        changes = tuple(snap.changes.get(row.name, []))
        views.append(
            MirrorView(
                row,
                host=m.host if m else "",
                http=(m.http or "") if m else "",
                admins=tuple(m.admins) if m else (),
                families=tuple(families),
                runs=tuple(runs.get(row.name, [])),
                changes=changes,
                cert=snap.certs.get(row.name),
                traffic=traffic.get(row.name),
                local_stats=snap.local_stats.get(row.name),
            )
        )
    gate = verdict if gate_share is not None else None
    return Site(
        now,
        dict(release.versions),
        release.released_at or None,
        gate,
        tuple(views),
        suspect=suspect,
        releases=tuple(snap.releases),
        traffic_countries=country_views(traffic, {m.name: m.country for m in inv.mirrors}),
    )


def traffic_views(snap: Snapshot) -> dict[str, TrafficView]:
    """Each mirror's traffic view, for the mirrors that reported in the last 30 days."""
    views = {name: mirror_view(rows, snap.now) for name, rows in snap.traffic.items()}
    return {name: v for name, v in views.items() if v is not None}


def run_facts(snap: Snapshot) -> list[RunFacts]:
    """The newest runs of each kind the metrics need: the newest, the newest ended, and the
    newest in which every mirror ended ok (searched among the snapshot's runs)."""
    out: list[RunFacts] = []
    wanted = {(k, w) for k in ("release", "heartbeat") for w in ("any", "ended", "ok")}
    for run in snap.runs:
        if not wanted:
            break
        counts = snap.run_outcomes.get(run.run_id, {})
        facts = RunFacts(run.kind, run.state, run.started_at, run.finished_at, counts)
        now_wanted = {(run.kind, "any")}
        if run.finished_at is not None:
            now_wanted.add((run.kind, "ended"))
            if facts.all_ok:
                now_wanted.add((run.kind, "ok"))
        if now_wanted & wanted:
            out.append(facts)
            wanted -= now_wanted
    return out


def metrics(
    rows: list[MirrorStatus],
    snap: Snapshot,
    *,
    release: Release,
    checked: set[str],
    gate_share: float | None,
    verdict: GateVerdict | None,
    suspect: str | None,
    t90_limit_s: float | None = None,
) -> MetricsSnapshot:
    """What the metrics say: the rows, each checked mirror's state per family, the runs, the
    gate, and whether the monitor suspects itself."""
    gate = verdict if gate_share is not None else None
    states = {k: r.state.value for k, r in snap.records.items() if k[0] in checked}
    traffic = traffic_views(snap)
    return MetricsSnapshot(
        snap.now,
        dict(release.versions),
        rows,
        states,
        run_facts(snap),
        gate,
        suspect=suspect is not None,
        release_propagation=snap.releases[0] if snap.releases else None,
        t90_limit_s=t90_limit_s,
        certs={m: c for m, c in snap.certs.items() if m in checked},
        traffic=traffic,
        traffic_countries=country_views(traffic, {r.name: r.country for r in rows}),
        local_stats=dict(snap.local_stats),
    )
