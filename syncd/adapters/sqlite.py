"""The SQLite record: one file (WAL), shared by publish, monitor and DNS.

Each part owns its tables and migrates them in order; ``schema_versions`` remembers how far
each part's schema has come, so parts are upgraded independently and never twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from syncd.core.errors import SyncdError


class StoreError(SyncdError, RuntimeError):
    """The record cannot be opened or is newer than this syncd; the message says what to do."""


def open_db(path: Path | str, timeout: float = 30.0) -> sqlite3.Connection:
    """Open (creating) the record at `path`: WAL, foreign keys, a busy timeout of `timeout`
    seconds; raise StoreError when it cannot be opened or its schema made."""
    try:
        conn = sqlite3.connect(str(path), timeout=timeout, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.row_factory = sqlite3.Row
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_versions "
            "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )
    except sqlite3.Error as err:
        raise StoreError(f"cannot open the state database {path}: {err}") from None
    return conn


def migrate(conn: sqlite3.Connection, component: str, migrations: Sequence[str]) -> int:
    """Apply `component`'s migrations not yet applied, each in its own transaction."""
    row = conn.execute(
        "SELECT version FROM schema_versions WHERE component = ?", (component,)
    ).fetchone()
    current = int(row[0]) if row else 0
    if current > len(migrations):
        raise StoreError(
            f"the state database's {component} schema is version {current}, newer than this "
            f"syncd knows ({len(migrations)}): upgrade syncd"
        )
    for version, script in enumerate(migrations[current:], start=current + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in script.split(";\n"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_versions (component, version) VALUES (?, ?) "
                "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                (component, version),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return len(migrations)
