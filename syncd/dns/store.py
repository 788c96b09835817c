"""The DNS part of the record: every change sent to the server, with its reason, the TTL the
removed records had, and when every authoritative server served it (settled): what the TXT
must wait out before it may move (``syncd.dns.steps``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from syncd.dns.plan import Change
from syncd.dns.steps import Removal
from syncd.sqlite import migrate

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
    # the TTL the server held for the changed records (a removed record may live that long in
    # caches), and when every authoritative server was seen serving the change
    "ALTER TABLE dns_changes ADD COLUMN held_ttl INTEGER",
    "ALTER TABLE dns_changes ADD COLUMN settled_at REAL",
]


class DnsStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        migrate(conn, "dns", MIGRATIONS)

    def record(self, at: float, changes: Sequence[Change], outcome: str) -> None:
        self.conn.executemany(
            "INSERT INTO dns_changes (at, name, rdtype, added, removed, reason, outcome, view, "
            "held_ttl) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    c.held_ttl,
                )
                for c in changes
            ],
        )

    def changes(self, limit: int = 100) -> list[sqlite3.Row]:
        return list(
            self.conn.execute("SELECT * FROM dns_changes ORDER BY id DESC LIMIT ?", (limit,))
        )

    def settle(self, at: float) -> None:
        """Every change sent so far is served by every authoritative server as of `at`."""
        self.conn.execute(
            "UPDATE dns_changes SET settled_at = ? WHERE settled_at IS NULL AND outcome = 'sent'",
            (at,),
        )

    def removals(self, since: float, *, default_ttl: int) -> list[Removal]:
        """The pools' removals sent since `since` (unix seconds), with when they settled (a
        removal not yet seen settled counts from `since` onwards: the caller settles first)
        and their TTL (`default_ttl` for changes recorded before TTLs were)."""
        rows = self.conn.execute(
            "SELECT at, settled_at, held_ttl FROM dns_changes WHERE outcome = 'sent' "
            "AND removed != '' AND rdtype IN ('A', 'AAAA') AND at >= ?",
            (since,),
        )
        return [
            Removal(
                max(r["settled_at"] or since, r["at"]),
                default_ttl if r["held_ttl"] is None else int(r["held_ttl"]),
            )
            for r in rows
        ]

    def names(self) -> set[str]:
        """Every name (relative to the zone, views apart) a change was ever sent for."""
        return {
            r["name"]
            for r in self.conn.execute(
                "SELECT DISTINCT name FROM dns_changes WHERE view IS NULL AND outcome = 'sent'"
            )
        }
