"""What the record says of each mirror, for the release gate and the rotation: read once,
through the publish and monitor features' read-only query modules, and judged by the gate's
one evidence function (`syncd.dns.gate.judge_mirrors`). A monitor pass judges from its own
snapshot instead and hands the judgement to the rotation."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from syncd.dns.gate import Gathered, Recorded, judge_recorded
from syncd.inventory.model import Inventory
from syncd.monitor.query import MonitorQuery
from syncd.publish.query import PublishQuery


def recorded(
    conn: sqlite3.Connection, inv: Inventory, maintenance: Mapping[str, str] | None = None
) -> Recorded:
    """Read what the gate judges of each mirror of `inv` once."""
    monitor = MonitorQuery(conn)
    return Recorded(
        published=PublishQuery(conn).mirror_states(),
        records=monitor.records(),
        latest_good={m.name: monitor.latest_good(m.name) for m in inv.mirrors},
        maintenance=dict(maintenance or {}),
    )


def gather_evidence(
    conn: sqlite3.Connection,
    inv: Inventory,
    *,
    http_check: bool,
    maintenance: Mapping[str, str] | None = None,
) -> Gathered:
    """Read the record once and judge each mirror of `inv` (see `judge_mirrors`)."""
    return judge_recorded(inv, recorded(conn, inv, maintenance), http_check=http_check)
