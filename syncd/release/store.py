"""The releases' part of the record: the CVD headers each release was built with (what its
announcement compares with the release before), and each release's announcement to the list:
sent once, or its last failure (retried by the next publish or monitor pass)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pushwire.cvd import CvdHeader
from syncd.sqlite import migrate
from syncd.text import clean

MIGRATIONS = [
    """
    CREATE TABLE release_headers (
        daily INTEGER NOT NULL,
        db TEXT NOT NULL,
        version INTEGER NOT NULL,
        signatures INTEGER NOT NULL,
        functionality INTEGER NOT NULL,
        build_time TEXT NOT NULL,
        unix_time INTEGER,
        builder TEXT NOT NULL,
        md5 TEXT NOT NULL,
        recorded_at REAL NOT NULL,
        PRIMARY KEY (daily, db)
    );
    CREATE TABLE release_mail (
        daily INTEGER PRIMARY KEY,
        versions TEXT NOT NULL,
        sent_at REAL,
        tries INTEGER NOT NULL DEFAULT 0,
        last_try_at REAL,
        error TEXT
    )
    """,
]


@dataclass(frozen=True)
class MailRow:
    daily: int
    sent_at: float | None
    tries: int
    last_try_at: float | None
    error: str | None


class ReleaseStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        migrate(conn, "releases", MIGRATIONS)

    def record_headers(self, headers: Mapping[str, CvdHeader], now: float) -> None:
        """Remember the headers of the release whose daily is `headers["daily"]` (the first
        seen stay: a release is built once)."""
        daily = headers.get("daily")
        if daily is None:
            return
        self.conn.executemany(
            "INSERT OR IGNORE INTO release_headers (daily, db, version, signatures, "
            "functionality, build_time, unix_time, builder, md5, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    daily.version,
                    db,
                    h.version,
                    h.signatures,
                    h.functionality,
                    clean(h.build_time, 100),
                    h.unix_time,
                    clean(h.builder, 200),
                    h.md5,
                    now,
                )
                for db, h in sorted(headers.items())
            ],
        )

    def headers(self, daily: int) -> dict[str, CvdHeader]:
        rows = self.conn.execute("SELECT * FROM release_headers WHERE daily = ?", (daily,))
        return {r["db"]: _header(r) for r in rows}

    def previous_headers(self, daily: int) -> dict[str, CvdHeader]:
        """The newest headers recorded of each database before release `daily`."""
        rows = self.conn.execute(
            "SELECT * FROM release_headers h WHERE daily = (SELECT MAX(daily) FROM "
            "release_headers WHERE daily < ?)",
            (daily,),
        )
        return {r["db"]: _header(r) for r in rows}

    def built_at(self) -> dict[int, float]:
        """Per daily version, its build time (the daily header's unix time)."""
        rows = self.conn.execute(
            "SELECT daily, unix_time FROM release_headers WHERE db = 'daily' "
            "AND unix_time IS NOT NULL"
        )
        return {int(r[0]): float(r[1]) for r in rows}

    # the announcement
    def mail(self, daily: int) -> MailRow | None:
        r = self.conn.execute("SELECT * FROM release_mail WHERE daily = ?", (daily,)).fetchone()
        if r is None:
            return None
        return MailRow(r["daily"], r["sent_at"], r["tries"], r["last_try_at"], r["error"])

    def mail_sent(self, daily: int, versions: str, now: float) -> None:
        self.conn.execute(
            "INSERT INTO release_mail (daily, versions, sent_at, tries, last_try_at) "
            "VALUES (?, ?, ?, 1, ?) ON CONFLICT (daily) DO UPDATE SET "
            "sent_at = excluded.sent_at, tries = tries + 1, last_try_at = excluded.last_try_at, "
            "error = NULL",
            (daily, versions, now, now),
        )

    def mail_failed(self, daily: int, versions: str, now: float, error: str) -> None:
        self.conn.execute(
            "INSERT INTO release_mail (daily, versions, tries, last_try_at, error) "
            "VALUES (?, ?, 1, ?, ?) ON CONFLICT (daily) DO UPDATE SET "
            "tries = tries + 1, last_try_at = excluded.last_try_at, error = excluded.error",
            (daily, versions, now, clean(error, 500)),
        )


def _header(r: sqlite3.Row) -> CvdHeader:
    return CvdHeader(
        clean(r["build_time"], 100),
        int(r["version"]),
        int(r["signatures"]),
        int(r["functionality"]),
        r["md5"],
        clean(r["builder"], 200),
        r["unix_time"],
    )


@contextlib.contextmanager
def mail_lock(state: Path) -> Iterator[bool]:
    """Hold the announcement for one sender at a time (a publish and a monitor pass may end
    together): an flock on ``<record>.announce.lock``, never waited for. Yield whether it is
    held: when not, another syncd is sending and this one leaves it (never twice)."""
    path = Path(f"{state}.announce.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
