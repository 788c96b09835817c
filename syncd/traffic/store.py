"""The traffic part of the record (its own component, ``traffic``): each mirror's reported
traffic, one row per client report (a report seen twice, from a retry or a resumed run, is
recorded once), and each mirror's last ``/local_stats/`` verdict.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from syncd.sqlite import migrate
from syncd.text import clean
from syncd.traffic.figures import Figures, from_report

COMPONENT = "traffic"
MIGRATIONS = [
    """
    CREATE TABLE traffic_reports (
        id INTEGER PRIMARY KEY,
        mirror TEXT NOT NULL,
        at REAL NOT NULL,
        report_started TEXT NOT NULL,
        requests INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        excluded INTEGER NOT NULL,
        malformed INTEGER NOT NULL,
        complete INTEGER NOT NULL,
        figures TEXT NOT NULL,
        UNIQUE (mirror, report_started)
    );
    CREATE INDEX traffic_reports_at ON traffic_reports (at);
    CREATE TABLE traffic_local_stats (
        mirror TEXT PRIMARY KEY,
        at REAL NOT NULL,
        verdict TEXT NOT NULL,
        detail TEXT NOT NULL,
        since REAL NOT NULL,
        warned INTEGER NOT NULL DEFAULT 0
    )
    """,
]


@dataclass(frozen=True)
class LocalStatsRow:
    mirror: str
    at: float  # last checked
    verdict: str  # syncd.traffic.localstats verdicts
    detail: str
    since: float  # the verdict holds since


def _figures(row: sqlite3.Row) -> Figures:
    data = json.loads(row["figures"])
    return Figures(
        requests=int(row["requests"]),
        bytes=int(row["bytes"]),
        excluded=int(row["excluded"]),
        malformed=int(row["malformed"]),
        kinds={k: (int(r), int(b)) for k, (r, b) in data["kinds"].items()},
        statuses={k: int(v) for k, v in data["statuses"].items()},
        clients={k: int(v) for k, v in data["clients"].items()},
        complete=bool(row["complete"]),
    )


class TrafficStore:
    """The traffic tables of the record held by `conn` (see syncd.sqlite.open_db)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        migrate(conn, COMPONENT, MIGRATIONS)

    def record(self, mirror: str, at: float, report_started: str, f: Figures) -> bool:
        """Record one report's figures (in the caller's transaction, if one is open); return
        False when that report of that mirror was recorded already."""
        figures = json.dumps(
            {"kinds": f.kinds, "statuses": f.statuses, "clients": f.clients}, sort_keys=True
        )
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO traffic_reports (mirror, at, report_started, requests, bytes,"
            " excluded, malformed, complete, figures) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                mirror,
                at,
                clean(report_started, 64),
                f.requests,
                f.bytes,
                f.excluded,
                f.malformed,
                int(f.complete),
                figures,
            ),
        )
        return cur.rowcount == 1

    def reports(self, since: float) -> dict[str, list[tuple[float, Figures]]]:
        """Every mirror's recorded figures at or after `since`, oldest first."""
        out: dict[str, list[tuple[float, Figures]]] = {}
        for row in self.conn.execute(
            "SELECT * FROM traffic_reports WHERE at >= ? ORDER BY at, id", (since,)
        ):
            out.setdefault(row["mirror"], []).append((float(row["at"]), _figures(row)))
        return out

    def prune(self, before: float) -> None:
        with self.conn:
            self.conn.execute("DELETE FROM traffic_reports WHERE at < ?", (before,))

    def local_stats(self) -> dict[str, LocalStatsRow]:
        return {
            r["mirror"]: LocalStatsRow(r["mirror"], r["at"], r["verdict"], r["detail"], r["since"])
            for r in self.conn.execute("SELECT * FROM traffic_local_stats")
        }

    def save_local_stats(self, mirror: str, at: float, verdict: str, detail: str) -> bool:
        """Record this check's verdict; return whether the admins are to be warned now: the
        first time it is found open since it was last found protected or absent (an answer
        that cannot tell, a timeout, neither warns again nor forgets the warning)."""
        with self.conn:
            row = self.conn.execute(
                "SELECT verdict, since, warned FROM traffic_local_stats WHERE mirror = ?",
                (mirror,),
            ).fetchone()
            since = row["since"] if row and row["verdict"] == verdict else at
            warned = bool(row["warned"]) if row else False
            warn = verdict == "open" and not warned
            if verdict == "open":
                warned = True
            elif verdict in ("protected", "none"):
                warned = False
            self.conn.execute(
                "INSERT INTO traffic_local_stats (mirror, at, verdict, detail, since, warned) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(mirror) DO UPDATE SET at = excluded.at, "
                "verdict = excluded.verdict, detail = excluded.detail, since = excluded.since, "
                "warned = excluded.warned",
                (mirror, at, verdict, clean(detail, 300), since, int(warned)),
            )
        return warn


def record_report(
    conn: sqlite3.Connection, mirror: str, at: float, report: Mapping[str, Any]
) -> bool:
    """Record the traffic of a client's report (cleaned JSON) if it carries some; a report
    already recorded (the same mirror, the same start) is not counted twice."""
    figures = from_report(report)
    started = report.get("started_at")
    if figures is None or not isinstance(started, str):
        return False
    return TrafficStore(conn).record(mirror, at, started, figures)
