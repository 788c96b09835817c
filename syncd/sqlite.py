"""The SQLite record: one file (WAL), shared by publish, monitor and DNS.

Each part owns its tables and migrates them in order; ``schema_versions`` remembers how far
each part's schema has come, so parts are upgraded independently and never twice.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from syncd.errors import SyncdError


class StoreError(SyncdError, RuntimeError):
    """The record cannot be opened or is newer than this syncd; the message says what to do."""


def open_db(path: Path | str, timeout: float = 30.0) -> sqlite3.Connection:
    """Open (creating) the record at `path`: WAL, foreign keys, a busy timeout of `timeout`
    seconds; raise StoreError when it cannot be opened or its schema made. A missing parent
    directory is created (mode 0750: the record is the team's, not the world's)."""
    if str(path) != ":memory:" and not str(path).startswith("file:"):
        _make_parent(Path(path))
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
        problem = state_problem(Path(path)) if str(path) != ":memory:" else None
        raise StoreError(problem or f"cannot open the state database {path}: {err}") from None
    return conn


def _make_parent(path: Path) -> None:
    parent = path.parent
    if parent.is_dir():
        return
    try:
        parent.mkdir(mode=0o750, parents=True)
    except FileExistsError:
        pass  # made meanwhile, or a file: state_problem names it
    except OSError:
        pass  # not ours to make: state_problem names the fix when the open fails


def state_problem(path: Path) -> str | None:
    """Given the state database's path, return one line naming why this user cannot open or
    create it, and the fix; None when it can (or the directory it needs can be made)."""
    user = getpass.getuser()
    if path.is_dir():
        return (
            f"the state database {path} is a directory: set state= (or --state) to a file in "
            f"it, such as {path / 'state.sqlite'}"
        )
    return _existing_problem(path, user) if path.exists() else _creation_problem(path, user)


def _existing_problem(path: Path, user: str) -> str | None:
    if not os.access(path, os.R_OK | os.W_OK):
        return (
            f"the state database {path} is not readable and writable by {user}: run syncd "
            f"as its owner, or: sudo chown {user} {path}"
        )
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return (
            f"the directory {path.parent} of the state database is not writable by {user} "
            f"(SQLite writes its journal beside the file): sudo chown {user} {path.parent}"
        )
    return None


def _creation_problem(path: Path, user: str) -> str | None:
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return (
            f"cannot create the state database {path}: {existing} is not a directory: set "
            "state= (or --state) to a path under a directory"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        return (
            f"cannot create the state database {path}: {existing} is not writable by {user}: "
            f"run: sudo install -d -o {user} -m 750 {path.parent} (or set state= to a path "
            f"{user} can write)"
        )
    return None


def migrate(conn: sqlite3.Connection, component: str, migrations: Sequence[str]) -> int:
    """Apply `component`'s migrations not yet applied, each in its own transaction; raise
    StoreError (one line, the record unchanged) when one cannot be applied (a full disk, a
    read-only file)."""
    try:
        return _migrate(conn, component, migrations)
    except sqlite3.Error as err:
        raise StoreError(
            f"cannot bring the state database's {component} tables up to date: {err} "
            "(free space beside it, or make it writable, then run the command again)"
        ) from None


def _migrate(conn: sqlite3.Connection, component: str, migrations: Sequence[str]) -> int:
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
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return len(migrations)
