"""How each release reached the mirrors, from what the record holds. Pure: the record's rows
in (publish runs, their targets and attempts, the monitor's checks, the TXT changes sent, the
release's build time), figures out.

A mirror *served* a release at the first moment there is proof of it: the publish's HTTP proof
(its target of a run of that release ended ok: the time it was recorded), or the monitor's
checks (on every address family it was checked on since the publish began, the first check
that saw every database at least at the release's version; the latest of those families'
first times). The *active* mirrors of a release are those its publish runs targeted. The
quantile ``q`` is reached when ``ceil(q * active)`` mirrors served it: the time of that
mirror's proof; a mirror that never served it is never counted (it only keeps the quantile
from being reached). Times are given from the CVD header's build time and from the first
publish run's start.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from syncd.monitor.freshness import Check
from syncd.publish.outcome import RunRow, TargetRow
from syncd.text import clean

QUANTILES: tuple[int, ...] = (50, 90, 99, 100)
DIRECT = "direct"  # the route of a mirror whose syncs named no source (no [[sources]])


@dataclass(frozen=True)
class Served:
    """When one mirror was first proven to serve a release, how, and whence it synced."""

    mirror: str
    at: float | None  # None: not served (yet)
    by: str | None  # "publish" (the publish's HTTP proof) or "monitor"
    route: str  # the source (or hub) its sync pulled from; DIRECT when none was named
    hub: bool  # `route` is a hub (a mirror of the fleet), not a source


@dataclass(frozen=True)
class Quantiles:
    """Seconds from a start until each share of `total` mirrors served a release (None: not
    reached)."""

    total: int
    served: int
    seconds: Mapping[int, float | None]

    def get(self, q: int) -> float | None:
        return self.seconds.get(q)


@dataclass(frozen=True)
class Propagation:
    """One release's propagation: its versions, when it was built, published and announced,
    the quantiles from the build and from the publish's start (overall, per source, per hub),
    and the mirrors still missing it."""

    versions: Mapping[str, int]
    built_at: float | None
    started_at: float
    announced_at: float | None
    runs: tuple[str, ...]
    mirrors: tuple[Served, ...]
    from_build: Quantiles | None  # None: no build time known
    from_start: Quantiles
    by_source: Mapping[str, Quantiles] = field(default_factory=dict)  # from the start
    by_hub: Mapping[str, Quantiles] = field(default_factory=dict)  # from the start

    @property
    def daily(self) -> int:
        return int(self.versions.get("daily", 0))

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(s.mirror for s in self.mirrors if s.at is None)

    @property
    def announce_delay_s(self) -> float | None:
        """From the publish's start to the TXT's announcement."""
        return None if self.announced_at is None else self.announced_at - self.started_at

    def to_json(self) -> dict[str, Any]:
        """The release as ``status.json``, ``syncd releases --json`` and ``syncd runs show
        --json`` give it."""
        return {
            "versions": dict(sorted(self.versions.items())),
            "built_at": self.built_at,
            "started_at": self.started_at,
            "announced_at": self.announced_at,
            "announce_delay_s": _r(self.announce_delay_s),
            "runs": list(self.runs),
            "active": self.from_start.total,
            "served": self.from_start.served,
            "from_build_s": None if self.from_build is None else _qjson(self.from_build),
            "from_start_s": _qjson(self.from_start),
            "by_source": {k: _group(v) for k, v in sorted(self.by_source.items())},
            "by_hub": {k: _group(v) for k, v in sorted(self.by_hub.items())},
            "missing": list(self.missing),
        }


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def _qjson(q: Quantiles) -> dict[str, float | None]:
    return {f"t{k}": _r(q.get(k)) for k in QUANTILES}


def _group(q: Quantiles) -> dict[str, Any]:
    return {"active": q.total, "served": q.served, **_qjson(q)}


def quantiles(times: Iterable[float | None], total: int, start: float) -> Quantiles:
    """Given each mirror's served time (None: not served), the count of active mirrors and a
    start, return the seconds from `start` until each of QUANTILES per cent had served (a
    negative time counts as 0: proven before the start)."""
    served = sorted(t for t in times if t is not None)
    seconds: dict[int, float | None] = {}
    for q in QUANTILES:
        need = max(1, math.ceil(q * total / 100)) if total else 0
        seconds[q] = (
            None if total == 0 or need > len(served) else max(0.0, served[need - 1] - start)
        )
    return Quantiles(total, len(served), seconds)


def _serves(versions: Mapping[str, int] | None, release: Mapping[str, int]) -> bool:
    if not versions:
        return False
    return all(int(versions.get(db, -1)) >= v for db, v in release.items())


def first_seen(
    checks: Mapping[str, Sequence[Check]], release: Mapping[str, int], since: float
) -> dict[str, float | None]:
    """Per address family checked at or after `since`, its first check seeing every database
    of `release` at least at its version (None: none did)."""
    out: dict[str, float | None] = {}
    for fam, fam_checks in checks.items():
        recent = [c for c in fam_checks if c.at >= since]
        if recent:
            out[fam] = next((c.at for c in recent if c.ok and _serves(c.versions, release)), None)
    return out


def monitor_served(seen: Mapping[str, float | None]) -> float | None:
    """When the monitor saw a mirror serve a release, given each family's first sight of it
    (`first_seen`): the latest of them; None when a family never saw it, or none was checked."""
    if not seen or any(t is None for t in seen.values()):
        return None
    return max(t for t in seen.values() if t is not None)


def _used(report: Any) -> str | None:
    """The source a client's report says it synced from (a report as recorded: a mapping, or
    its JSON text), or None."""
    if isinstance(report, str):
        try:
            report = json.loads(report)
        except ValueError:
            return None
    used = report.get("source_used") if isinstance(report, Mapping) else None
    return clean(used, 120) if isinstance(used, str) and used else None


def _route(attempts: Sequence[Mapping[str, Any]], report: Mapping[str, Any] | None) -> str:
    """Whence a mirror's sync pulled: the source its client used (the report of its ok end,
    else of its last sync that says), else the source its last sync was pushed to, else
    DIRECT."""
    syncs = [a for a in attempts if a.get("verb") == "sync"]
    for used in (_used(report), *(_used(a.get("report")) for a in reversed(syncs))):
        if used:
            return used
    for a in reversed(syncs):
        if a.get("source"):
            return clean(str(a["source"]), 120)
    return DIRECT


def propagation(
    runs: Sequence[RunRow],
    targets: Mapping[str, Sequence[TargetRow]],
    attempts: Mapping[str, Sequence[Mapping[str, Any]]],
    seen: Mapping[str, Mapping[str, float | None]],
    *,
    built_at: float | None = None,
    announced_at: float | None = None,
) -> Propagation:
    """Given the release runs of one release (same expected versions; at least one), their
    targets and attempts (per run id), per mirror the monitor's first sight of the release on
    each address family checked since the first run started (`first_seen`), the CVD
    header's build time and when the TXT announced the release, return its propagation."""
    if not runs:
        raise ValueError("a release's propagation needs at least one of its runs")
    ordered = sorted(runs, key=lambda r: r.started_at)
    release = dict(ordered[0].expected)
    start = ordered[0].started_at
    proven: dict[str, float] = {}
    reports: dict[str, Mapping[str, Any] | None] = {}
    tried: dict[str, list[Mapping[str, Any]]] = {}
    for run in ordered:
        for t in targets.get(run.run_id, ()):
            tried.setdefault(t.mirror, [])
            if t.outcome == "ok" and t.finished_at is not None and t.mirror not in proven:
                proven[t.mirror] = t.finished_at
                reports[t.mirror] = t.report
        for a in attempts.get(run.run_id, ()):
            tried.setdefault(str(a.get("mirror")), []).append(a)
    names = sorted(tried)
    served = []
    for name in names:
        by_monitor = monitor_served(seen.get(name, {}))
        by_publish = proven.get(name)
        at, by = by_publish, "publish" if by_publish is not None else None
        if by_monitor is not None and (at is None or by_monitor < at):
            at, by = by_monitor, "monitor"
        route = _route(tried.get(name, []), reports.get(name))
        served.append(Served(name, at, by, route, route in tried and route != name))
    from_build = (
        None if built_at is None else quantiles((s.at for s in served), len(served), built_at)
    )
    groups: dict[tuple[bool, str], list[Served]] = {}
    for s in served:
        groups.setdefault((s.hub, s.route), []).append(s)

    def of(members: list[Served]) -> Quantiles:
        return quantiles((m.at for m in members), len(members), start)

    return Propagation(
        versions=release,
        built_at=built_at,
        started_at=start,
        announced_at=announced_at,
        runs=tuple(r.run_id for r in ordered),
        mirrors=tuple(served),
        from_build=from_build,
        from_start=of(served),
        by_source={route: of(m) for (hub, route), m in groups.items() if not hub},
        by_hub={route: of(m) for (hub, route), m in groups.items() if hub},
    )


def release_key(versions: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    """What tells releases apart: every database's version."""
    return tuple(sorted((db, int(v)) for db, v in versions.items()))


def group_runs(runs: Iterable[RunRow]) -> list[list[RunRow]]:
    """The release runs (not heartbeats) grouped per release, newest release first (by its
    first run's start)."""
    groups: dict[tuple[tuple[str, int], ...], list[RunRow]] = {}
    for r in runs:
        if r.kind != "release" or not r.expected:
            continue
        groups.setdefault(release_key(r.expected), []).append(r)
    return sorted(groups.values(), key=lambda g: -min(r.started_at for r in g))


def announced(
    txts: Iterable[tuple[float, Mapping[str, int]]], release: Mapping[str, int]
) -> float | None:
    """When a TXT announcing exactly `release`'s versions was first sent (None: never), given
    each TXT sent as (when, its versions)."""
    times = [at for at, versions in txts if all(versions.get(db) == v for db, v in release.items())]
    return min(times, default=None)
