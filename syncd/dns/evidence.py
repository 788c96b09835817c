"""What the record says of each mirror, for the release gate and the rotation: a read-only
query over the publish and monitor records, read once, judged by the gate's one evidence
function (`syncd.dns.gate.judge_mirrors`). The monitor judges from its own snapshot instead."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from syncd.dns.gate import Gathered, judge_mirrors
from syncd.inventory.model import Inventory
from syncd.monitor.store import MonitorStore
from syncd.publish.store import PublishStore


def gather_evidence(
    conn: sqlite3.Connection,
    inv: Inventory,
    *,
    http_check: bool,
    maintenance: Mapping[str, str] | None = None,
) -> Gathered:
    """Read the record once and judge each mirror of `inv` (see `judge_mirrors`)."""
    published = {s.mirror: s for s in PublishStore(conn).mirror_states()}
    monitor = MonitorStore(conn)
    latest = {}
    for m in inv.mirrors:
        good = [c for c in monitor.checks(m.name, 0.0) if c.ok and c.versions]
        latest[m.name] = good[-1] if good else None
    return judge_mirrors(
        inv, published, monitor.records(), latest, http_check=http_check, maintenance=maintenance
    )
