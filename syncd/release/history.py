"""Past releases as the record holds them, for ``syncd releases`` and ``syncd runs show``:
read once, the connection closed."""

from __future__ import annotations

from pathlib import Path

from syncd.errors import UsageError
from syncd.publish.query import PublishQuery
from syncd.release.propagation import Propagation
from syncd.release.record import read_releases, release_of_run
from syncd.sqlite import open_db


def _record(path: Path) -> Path:
    if not path.exists():
        raise UsageError(f"{path}: no record yet (run 'syncd publish' first)")
    return path


def recent(path: Path, limit: int) -> list[Propagation]:
    """The newest `limit` releases' propagation, newest first."""
    conn = open_db(_record(path))
    try:
        return read_releases(conn, limit)
    finally:
        conn.close()


def of_run(path: Path, run_id: str) -> Propagation | None:
    """The propagation of the release run `run_id` pushed (None: a heartbeat run)."""
    conn = open_db(_record(path))
    try:
        run = PublishQuery(conn).run(run_id)
        return None if run is None else release_of_run(conn, run)
    finally:
        conn.close()
