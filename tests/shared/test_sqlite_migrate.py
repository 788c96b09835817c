"""The record's migrations: a component's tables that cannot be made (a full disk, a file that
may not be written) are one StoreError naming the component and the fix, never a traceback,
and leave the record as it was. (On the code before, sqlite3.OperationalError escaped, and
`syncd runs show` on a full disk printed a traceback instead of the run.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.sqlite import StoreError, migrate, open_db

MIGRATIONS = ["CREATE TABLE one (a INTEGER)", "CREATE TABLE two (b INTEGER)"]


def test_applied_once_and_in_order(tmp_path: Path) -> None:
    conn = open_db(tmp_path / "state.sqlite")
    assert migrate(conn, "part", MIGRATIONS[:1]) == 1
    assert migrate(conn, "part", MIGRATIONS) == 2
    assert migrate(conn, "part", MIGRATIONS) == 2
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"one", "two"} <= names


def test_a_record_that_cannot_be_written_is_one_line_naming_the_component(
    tmp_path: Path,
) -> None:
    conn = open_db(tmp_path / "state.sqlite")
    migrate(conn, "part", MIGRATIONS[:1])
    conn.execute("PRAGMA query_only = ON")  # as a full disk or a read-only file refuses writes
    with pytest.raises(StoreError) as caught:
        migrate(conn, "part", MIGRATIONS)
    message = str(caught.value)
    assert "part tables" in message and "free space" in message and "\n" not in message
    conn.execute("PRAGMA query_only = OFF")
    version = conn.execute("SELECT version FROM schema_versions WHERE component = 'part'")
    assert version.fetchone()[0] == 1  # nothing half done
