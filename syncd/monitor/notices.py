"""The maintenance notices in the record: what each mirror's ``local_maintenance`` said when
the monitor last read it, beside the ``maintenance`` of its newest report (the publish
record's), and the windows the inventory holds: gathered for `syncd.monitor.maintenance`,
which decides. Its own SQLite component (``maintenance``)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence

from syncd.dns.query import held_pool_ttl
from syncd.inventory.model import Inventory
from syncd.monitor.maintenance import (
    HTTP,
    INVENTORY,
    Sighting,
    Window,
    from_notice,
    lead_s,
    report_sighting,
    windows_in_effect,
)
from syncd.publish.query import PublishQuery
from syncd.sqlite import migrate

MIGRATIONS = [
    """
    CREATE TABLE maintenance_notices (
        mirror TEXT PRIMARY KEY,
        at REAL NOT NULL,
        window TEXT,
        problem TEXT
    )
    """,
]


class NoticeStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        migrate(conn, "maintenance", MIGRATIONS)
        self.publish = PublishQuery(conn)  # the reports' tables exist

    def save(self, seen: Iterable[tuple[str, Sighting]]) -> None:
        """Keep each mirror's newest HTTP sighting (one not read keeps the one before)."""
        rows = [
            (
                mirror,
                s.at,
                None
                if s.window is None
                else json.dumps([s.window.starts, s.window.ends, s.window.reason]),
                s.problem,
            )
            for mirror, s in seen
        ]
        self.conn.executemany(
            "INSERT INTO maintenance_notices VALUES (?, ?, ?, ?) ON CONFLICT(mirror) DO UPDATE "
            "SET at = excluded.at, window = excluded.window, problem = excluded.problem",
            rows,
        )

    def http(self) -> dict[str, Sighting]:
        out = {}
        for mirror, at, window, problem in self.conn.execute(
            "SELECT mirror, at, window, problem FROM maintenance_notices"
        ):
            w = None
            if window is not None:
                starts, ends, reason = json.loads(window)
                w = Window(float(starts), float(ends), str(reason), HTTP)
            out[mirror] = Sighting(HTTP, float(at), w, problem)
        return out

    def reports(self, runs: int = 20) -> dict[str, Sighting]:
        """What each mirror's newest report that says something of maintenance says, among
        the newest `runs` publish runs (a client sends its notice in every report: older runs
        add nothing); a report of an older client, without the key, or one whose notice is
        none, says nothing."""
        rows = self.publish.recent_target_reports(runs)
        out = {}
        for mirror, at, text in rows:
            try:
                report = json.loads(text)
            except ValueError:
                continue
            seen = report_sighting(report, float(at))
            if seen is not None and seen.problem is None:
                out[mirror] = seen
        return out

    def sightings(self, names: Sequence[str]) -> dict[str, list[Sighting]]:
        http, reports = self.http(), self.reports()
        return {n: [s for s in (http.get(n), reports.get(n)) if s is not None] for n in names}


def team_windows(inv: Inventory) -> dict[str, Window]:
    """The windows the inventory holds (announced by mail)."""
    return {
        m.name: from_notice(m.maintenance.notice(), INVENTORY)
        for m in inv.mirrors
        if m.maintenance is not None
    }


def in_effect(
    conn: sqlite3.Connection, inv: Inventory, now: float, *, lead: float, max_s: float
) -> dict[str, Window]:
    """Read the record once; return the windows in effect at `now`, by mirror."""
    names = [m.name for m in inv.mirrors]
    seen = NoticeStore(conn).sightings(names)
    return windows_in_effect(team_windows(inv), seen, names, now, lead=lead, max_s=max_s)


def lead(conn: sqlite3.Connection, interval_s: float, pool_ttl: float) -> float:
    """`lead_s` with the longest pool TTL the DNS record says the servers may still hold."""
    return lead_s(interval_s, pool_ttl, held_pool_ttl(conn))
