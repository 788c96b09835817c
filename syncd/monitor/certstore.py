"""The certificates' part of the record (its own component, ``certs``): each mirror's newest
certificate status, and which warnings went out for which certificate, so that a restarted
monitor never mails one twice."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from syncd.monitor.certs import CertStatus
from syncd.sqlite import migrate

MIGRATIONS = [
    """
    CREATE TABLE cert_status (
        mirror TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        at REAL NOT NULL,
        state TEXT NOT NULL,
        problems TEXT NOT NULL,
        fingerprint TEXT,
        not_before REAL,
        not_after REAL,
        names TEXT NOT NULL,
        issuer TEXT NOT NULL
    );
    CREATE TABLE cert_mail (
        mirror TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        key TEXT NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (mirror, fingerprint, key)
    )
    """,
]


class CertStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        migrate(conn, "certs", MIGRATIONS)

    def save(self, statuses: Iterable[CertStatus], mirrors: Iterable[str]) -> None:
        """Record each status as its mirror's newest; forget the mirrors not in `mirrors` (no
        https URL any more), and the warnings of certificates their mirror no longer serves."""
        keep = list(mirrors)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for s in statuses:
                self.conn.execute(
                    "INSERT OR REPLACE INTO cert_status VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        s.mirror,
                        s.url,
                        s.at,
                        s.state,
                        json.dumps(list(s.problems)),
                        s.fingerprint,
                        s.not_before,
                        s.not_after,
                        json.dumps(list(s.names)),
                        s.issuer,
                    ),
                )
            marks = ",".join("?" * len(keep))
            self.conn.execute(f"DELETE FROM cert_status WHERE mirror NOT IN ({marks})", keep)  # noqa: S608
            # a renewed certificate starts afresh: the old one's warnings are not needed (a
            # check that read no certificate says nothing of which one is served: kept)
            self.conn.execute(
                "DELETE FROM cert_mail WHERE NOT EXISTS (SELECT 1 FROM cert_status s "
                "WHERE s.mirror = cert_mail.mirror "
                "AND (s.fingerprint = cert_mail.fingerprint OR s.fingerprint IS NULL))"
            )
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def statuses(self) -> dict[str, CertStatus]:
        rows = self.conn.execute("SELECT * FROM cert_status ORDER BY mirror")
        return {
            r["mirror"]: CertStatus(
                r["mirror"],
                r["url"],
                r["at"],
                r["state"],
                tuple(json.loads(r["problems"])),
                r["fingerprint"],
                r["not_before"],
                r["not_after"],
                tuple(json.loads(r["names"])),
                r["issuer"],
            )
            for r in rows
        }

    def mailed(self, mirror: str, fingerprint: str) -> set[str]:
        """The warnings already sent for this certificate of `mirror`."""
        rows = self.conn.execute(
            "SELECT key FROM cert_mail WHERE mirror = ? AND fingerprint = ?", (mirror, fingerprint)
        )
        return {r["key"] for r in rows}

    def mark_mailed(self, mirror: str, fingerprint: str, key: str, at: float) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO cert_mail VALUES (?, ?, ?, ?)", (mirror, fingerprint, key, at)
        )
