"""The monitor's record as the other features read it: each mirror's freshness per family,
its checks, its newest good check, the first check that saw a release, and the maintenance
windows in effect. Read-only: nothing here writes a row (the writes are the monitor pass's,
through ``syncd.monitor.store`` and ``syncd.monitor.notices``); plain data out. The DNS
update and the release's propagation read the monitor's record through this module only (an
import contract in pyproject.toml holds it)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence

from syncd.inventory.model import Inventory
from syncd.monitor.freshness import Check, Record
from syncd.monitor.maintenance import Window
from syncd.monitor.notices import in_effect, lead
from syncd.monitor.store import MonitorStore


class MonitorQuery:
    """The monitor tables of the record held by `conn`, read. Their schema is the store's,
    brought up to date on first use as the store does; nothing else is written."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._store = MonitorStore(conn)

    def records(self) -> dict[tuple[str, str], Record]:
        """Each mirror's freshness, by (mirror, family)."""
        return self._store.records()

    def latest_good(self, mirror: str) -> Check | None:
        """The mirror's newest check that saw versions served (None: none retained)."""
        good = [c for c in self._store.checks(mirror, 0.0) if c.ok and c.versions]
        return good[-1] if good else None


def windows_in_effect(
    conn: sqlite3.Connection,
    inv: Inventory,
    now: float,
    *,
    interval_s: float,
    pool_ttl: float,
    max_s: float,
) -> dict[str, Window]:
    """The maintenance windows in effect at `now`, by mirror (``syncd.monitor.maintenance``):
    from one monitor interval plus the pools' longest TTL (as configured, or as the servers
    may still hold it) before each starts."""
    return in_effect(conn, inv, now, lead=lead(conn, interval_s, pool_ttl), max_s=max_s)


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def first_seen(
    conn: sqlite3.Connection, mirrors: Sequence[str], release: Mapping[str, int], since: float
) -> dict[str, dict[str, float | None]]:
    """Per mirror of `mirrors`, per address family checked at or after `since`, its first check
    that saw every database of `release` at least at its version (None: none did). Each answer
    is one index walk (monitor_checks (mirror, at)) that stops at the first row found, and
    SQLite reads the versions (json_extract): a month of checks is never decoded in Python."""
    if not {"monitor_checks", "monitor_state"} <= _tables(conn) or not mirrors:
        return {}
    dbs = sorted(release)
    cond = " AND CAST(json_extract(versions, ?) AS INTEGER) >= ?" * len(dbs)
    wants = [x for db in dbs for x in (f'$."{db}"', int(release[db]))]
    first_check = (
        "SELECT at FROM monitor_checks WHERE mirror = ? AND family = ? AND at >= ? "
        "ORDER BY at LIMIT 1"
    )
    first_serving = (
        "SELECT at FROM monitor_checks WHERE mirror = ? AND family = ? AND at >= ? AND ok = 1 "  # noqa: S608 (only ?s)
        "AND versions IS NOT NULL" + cond + " ORDER BY at LIMIT 1"
    )
    out: dict[str, dict[str, float | None]] = {}
    for mirror in mirrors:
        # the families it was ever judged on (monitor_state's key): no scan of its checks
        families = [
            r[0]
            for r in conn.execute("SELECT family FROM monitor_state WHERE mirror = ?", (mirror,))
        ]
        for family in families:
            if conn.execute(first_check, (mirror, family, since)).fetchone() is None:
                continue  # not checked on this family since the publish began
            row = conn.execute(first_serving, (mirror, family, since, *wants)).fetchone()
            out.setdefault(mirror, {})[family] = None if row is None else float(row[0])
    return out
