"""The DNS part of the record: every change sent to the server, with its reason."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from syncd.adapters.sqlite import migrate
from syncd.core.dnsplan import Change

MIGRATIONS = [
    """
    CREATE TABLE dns_changes (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        name TEXT NOT NULL,
        rdtype TEXT NOT NULL,
        added TEXT NOT NULL,
        removed TEXT NOT NULL,
        reason TEXT NOT NULL,
        outcome TEXT NOT NULL
    )
    """,
    # db.local by region: the BIND view whose db.local zone the change is for (NULL: the zone)
    "ALTER TABLE dns_changes ADD COLUMN view TEXT",
]


class DnsStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        migrate(conn, "dns", MIGRATIONS)

    def record(self, at: float, changes: Sequence[Change], outcome: str) -> None:
        self.conn.executemany(
            "INSERT INTO dns_changes (at, name, rdtype, added, removed, reason, outcome, view) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    at,
                    c.name,
                    c.rdtype,
                    " ".join(c.add),
                    " ".join(c.remove),
                    c.reason,
                    outcome,
                    c.view,
                )
                for c in changes
            ],
        )

    def changes(self, limit: int = 100) -> list[sqlite3.Row]:
        return list(
            self.conn.execute("SELECT * FROM dns_changes ORDER BY id DESC LIMIT ?", (limit,))
        )
