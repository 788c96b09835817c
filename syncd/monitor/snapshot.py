"""The record as one monitor pass's outputs see it, read once: each mirror's freshness per
family, its checks and state changes, its last push, and the recent publish runs. The status
page, the metrics and the gate they show are built from this one snapshot
(`syncd.statuspage.build`, `syncd.dns.gate.judge_mirrors`), and the DNS rotation is handed
that judgement. Pure: the pass reads it (`syncd.monitor.run.read_snapshot`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from syncd.monitor.certs import CertStatus
from syncd.monitor.freshness import Check, Record
from syncd.publish.outcome import MirrorPushState, RunRow, TargetRow
from syncd.release.propagation import Propagation
from syncd.traffic.figures import Figures

HISTORY_DAYS = 30  # what a mirror's page shows
RUNS_SHOWN = 30  # the publish runs a mirror's page lists
RUNS_SEARCHED = 200  # the runs the metrics search for the newest of each kind
CHANGES_SHOWN = 20  # the state changes a mirror's page lists
DAY = 86_400.0


@dataclass(frozen=True)
class Change:
    family: str
    at: float
    old: str
    new: str
    reason: str


@dataclass(frozen=True)
class Snapshot:
    """Plain data: what the record holds for the mirrors named, as of `now`."""

    now: float
    records: dict[tuple[str, str], Record]  # (mirror, family) -> freshness
    checks: dict[str, dict[str, list[Check]]]  # mirror -> family -> every retained check
    states: dict[str, dict[str, list[tuple[float, str, str]]]]  # ... -> (at, old, new)
    changes: dict[str, list[Change]]  # mirror -> its newest changes, newest first
    published: dict[str, MirrorPushState]  # mirror -> its last push
    runs: list[RunRow]  # the newest runs, newest first
    run_targets: dict[str, list[TargetRow]] = field(default_factory=dict)  # the runs shown
    run_outcomes: dict[str, dict[str, int]] = field(default_factory=dict)  # outcome -> count
    releases: list[Propagation] = field(default_factory=list)  # the last ones, newest first
    certs: dict[str, CertStatus] = field(default_factory=dict)  # mirror -> its https certificate
    # mirror -> its traffic reports of the last HISTORY_DAYS, (recorded at, figures), oldest first
    traffic: dict[str, list[tuple[float, Figures]]] = field(default_factory=dict)
    local_stats: dict[str, tuple[str, str]] = field(default_factory=dict)  # (verdict, detail)

    def mirror_checks(self, mirror: str, since: float) -> list[Check]:
        """The mirror's checks at or after `since`, every family, oldest first."""
        found = [c for fam in self.checks.get(mirror, {}).values() for c in fam if c.at >= since]
        return sorted(found, key=lambda c: c.at)

    def latest_good(self, mirror: str) -> Check | None:
        """The mirror's newest check that saw versions served."""
        good = [c for c in self.mirror_checks(mirror, 0.0) if c.ok and c.versions]
        return good[-1] if good else None

    def mirror_records(self, mirror: str) -> list[Record]:
        return [r for (name, _), r in self.records.items() if name == mirror]
