"""What the monitor's checks proved each mirror serves, per address family: the release files
read whole and the CVD tails compared, with the validators (ETag, Last-Modified) and size each
answer carried (syncd.httpcheck.conditional). The next pass leans on it to ask again with a
conditional Range request instead of a whole read. Its own part of the record."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping

from syncd.httpcheck.conditional import Proven
from syncd.sqlite import migrate

COMPONENT = "monitor_proven"
MIGRATIONS = [
    """
    CREATE TABLE monitor_proven (
        mirror TEXT NOT NULL,
        family TEXT NOT NULL,
        name TEXT NOT NULL,
        proof TEXT NOT NULL,
        size INTEGER NOT NULL,
        etag TEXT,
        last_modified TEXT,
        at REAL NOT NULL,
        PRIMARY KEY (mirror, family, name)
    )
    """,
]

Known = dict[tuple[str, str], dict[str, Proven]]


class ProvenStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        migrate(conn, COMPONENT, MIGRATIONS)

    def known(self) -> Known:
        """Return what was proven, by (mirror, family), then by file name."""
        out: Known = {}
        for r in self.conn.execute(
            "SELECT mirror, family, name, proof, size, etag, last_modified FROM monitor_proven"
        ):
            out.setdefault((r["mirror"], r["family"]), {})[r["name"]] = Proven(
                r["name"], r["proof"], r["size"], r["etag"], r["last_modified"]
            )
        return out

    def replace(
        self, proven: Mapping[tuple[str, str], Iterable[Proven]], mirrors: Iterable[str], at: float
    ) -> None:
        """Make each (mirror, family) of `proven` hold exactly what its check proved now, and
        forget every mirror not in `mirrors` (gone from the inventory, disabled), in one
        transaction. A (mirror, family) not in `proven` (its check failed) keeps what it had."""
        keep = sorted(set(mirrors))
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            marks = ",".join("?" * len(keep))
            self.conn.execute(f"DELETE FROM monitor_proven WHERE mirror NOT IN ({marks})", keep)  # noqa: S608
            for (mirror, family), items in proven.items():
                self.conn.execute(
                    "DELETE FROM monitor_proven WHERE mirror = ? AND family = ?", (mirror, family)
                )
                self.conn.executemany(
                    "INSERT OR REPLACE INTO monitor_proven "
                    "(mirror, family, name, proof, size, etag, last_modified, at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (mirror, family, p.name, p.proof, p.size, p.etag, p.last_modified, at)
                        for p in items
                    ],
                )
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
