"""The publish record as the other features read it: each mirror's last push, the runs, their
targets and attempts, and what the newest reports say. Read-only: no method writes a row (the
writes are ``syncd.publish.store``'s and the record writer's, the publish's own); what comes
out is plain data (frozen dataclasses, dicts). The monitor, the DNS gate, the release's
propagation and the maintenance notices read the publish record through this module only
(an import contract in pyproject.toml holds it)."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from typing import Any

from syncd.publish.outcome import MirrorPushState, RunRow, TargetRow
from syncd.publish.store import PublishStore


class PublishQuery:
    """The publish tables of the record held by `conn`, read. Their schema is the store's,
    brought up to date on first use as the store does (a record without them yet reads as
    empty); nothing else is written."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._store = PublishStore(conn)
        self._conn = conn

    def mirror_states(self) -> dict[str, MirrorPushState]:
        """Each mirror's last push, by mirror."""
        return {s.mirror: s for s in self._store.mirror_states()}

    def run(self, run_id: str) -> RunRow | None:
        return self._store.run(run_id)

    def runs(self, limit: int = 10) -> list[RunRow]:
        """The newest `limit` runs, newest first."""
        return self._store.runs(limit)

    def targets(self, run_id: str) -> list[TargetRow]:
        return self._store.targets(run_id)

    def attempts(self, run_id: str) -> list[dict[str, Any]]:
        return self._store.attempts(run_id)

    def outcome_counts(self, run_ids: Collection[str]) -> dict[str, dict[str, int]]:
        return self._store.outcome_counts(run_ids)

    def recent_target_reports(self, runs: int) -> list[tuple[str, float, str]]:
        """(mirror, finished at, report as recorded) of every finished target with a report
        among the newest `runs` runs, oldest first."""
        rows = self._conn.execute(
            "SELECT mirror, finished_at, report FROM publish_targets WHERE run_id IN "
            "(SELECT run_id FROM publish_runs ORDER BY started_at DESC LIMIT ?) "
            "AND report IS NOT NULL AND finished_at IS NOT NULL ORDER BY finished_at",
            (runs,),
        )
        return [(str(m), float(at), str(text)) for m, at, text in rows]
