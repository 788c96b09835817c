"""The publisher's part of the record: runs, every attempt as it happens, each mirror's final
outcome per run, and each mirror's current state. Every write is its own committed transaction
(autocommit, WAL), so a SIGKILL of syncd loses nothing already written; or, handed to the
record's writer (`syncd.publish.recordwriter`), a part of the transaction it commits for a
batch of writes before it tells anyone they are done.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any

from syncd.publish.outcome import MirrorPushState, RunRow, TargetRow
from syncd.sqlite import migrate
from syncd.text import clean

MIGRATIONS = [
    """
    CREATE TABLE publish_runs (
        run_id TEXT PRIMARY KEY,
        started_at REAL NOT NULL,
        finished_at REAL,
        state TEXT NOT NULL,
        expected TEXT NOT NULL,
        request TEXT NOT NULL,
        inventory TEXT,
        invocations INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE publish_targets (
        run_id TEXT NOT NULL REFERENCES publish_runs (run_id),
        mirror TEXT NOT NULL,
        outcome TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        report TEXT,
        finished_at REAL,
        PRIMARY KEY (run_id, mirror)
    );
    CREATE TABLE publish_attempts (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES publish_runs (run_id),
        mirror TEXT NOT NULL,
        number INTEGER NOT NULL,
        verb TEXT NOT NULL,
        started_at REAL NOT NULL,
        finished_at REAL,
        verdict TEXT,
        outcome TEXT,
        exit_status INTEGER,
        error TEXT,
        report TEXT
    );
    CREATE INDEX publish_attempts_run ON publish_attempts (run_id, mirror);
    CREATE TABLE publish_mirror_state (
        mirror TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        outcome TEXT NOT NULL,
        at REAL NOT NULL,
        last_ok_at REAL,
        versions TEXT,
        duration_s REAL
    )
    """,
    # a heartbeat run pushes the refreshed timestamp of the same release (kind 'heartbeat')
    """
    ALTER TABLE publish_runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'release';
    ALTER TABLE publish_runs ADD COLUMN heartbeat_stamp INTEGER
    """,
    # with [[sources]]: the source an attempt was pushed to, and why (syncd.publish.sources)
    """
    ALTER TABLE publish_attempts ADD COLUMN source TEXT;
    ALTER TABLE publish_attempts ADD COLUMN source_reason TEXT
    """,
]


def _json(value: object) -> str | None:
    """`value` as JSON text; ASCII, so a lone surrogate in an older caller's value is an escape
    (as ``\\ud800``) SQLite stores, not a character it cannot encode."""
    return None if value is None else json.dumps(value, sort_keys=True)


def _text(value: str | None) -> str | None:
    """An error text as stored: cleaned (`syncd.text.clean`), whoever made it."""
    return None if value is None else clean(value)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class PublishStore:
    """The publish tables of the record held by `conn` (see syncd.sqlite.open_db)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        migrate(conn, "publish", MIGRATIONS)

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """Statements that stand or fall together: a transaction of their own, or a part of
        the one already open (the record writer's batch, which commits or rolls back all)."""
        if self.conn.in_transaction:
            yield
            return
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            yield

    # runs
    def create_run(
        self,
        run_id: str,
        now: float,
        *,
        expected: Mapping[str, int],
        request: str,
        inventory: str | None,
        mirrors: Iterable[str],
        kind: str = "release",
        heartbeat_stamp: int | None = None,
    ) -> None:
        with self._write():
            self.conn.execute(
                "INSERT INTO publish_runs (run_id, started_at, state, expected, request, "
                "inventory, kind, heartbeat_stamp) VALUES (?, ?, 'running', ?, ?, ?, ?, ?)",
                (run_id, now, _json(dict(expected)), request, inventory, kind, heartbeat_stamp),
            )
            self.conn.executemany(
                "INSERT INTO publish_targets (run_id, mirror) VALUES (?, ?)",
                [(run_id, m) for m in mirrors],
            )

    def reopen_run(self, run_id: str) -> None:
        self.conn.execute(
            "UPDATE publish_runs SET state = 'running', finished_at = NULL, "
            "invocations = invocations + 1 WHERE run_id = ?",
            (run_id,),
        )

    def finish_run(self, run_id: str, now: float, state: str) -> None:
        self.conn.execute(
            "UPDATE publish_runs SET state = ?, finished_at = ? WHERE run_id = ?",
            (state, now, run_id),
        )

    def run(self, run_id: str) -> RunRow | None:
        row = self.conn.execute("SELECT * FROM publish_runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        return RunRow(
            row["run_id"],
            row["started_at"],
            row["finished_at"],
            row["state"],
            _load(row["expected"]),
            row["request"],
            row["inventory"],
            row["invocations"],
            row["kind"],
            row["heartbeat_stamp"],
        )

    def runs(self, limit: int = 10) -> list[RunRow]:
        ids = self.conn.execute(
            "SELECT run_id FROM publish_runs ORDER BY started_at DESC LIMIT ?", (limit,)
        ).fetchall()
        return [r for r in (self.run(i[0]) for i in ids) if r is not None]

    def outcome_counts(self, run_ids: Collection[str]) -> dict[str, dict[str, int]]:
        """Per run of `run_ids`, how many mirrors ended with each outcome ("none": not yet),
        counted by SQLite (no report is read)."""
        if not run_ids:
            return {}
        marks = ", ".join("?" * len(run_ids))
        rows = self.conn.execute(
            "SELECT run_id, COALESCE(outcome, 'none') AS outcome, COUNT(*) AS n "  # noqa: S608
            f"FROM publish_targets WHERE run_id IN ({marks}) GROUP BY run_id, 2",
            tuple(run_ids),
        )
        out: dict[str, dict[str, int]] = {}
        for r in rows:
            out.setdefault(r["run_id"], {})[r["outcome"]] = r["n"]
        return out

    # targets (one per mirror per run)
    def targets(self, run_id: str) -> list[TargetRow]:
        rows = self.conn.execute(
            "SELECT * FROM publish_targets WHERE run_id = ? ORDER BY mirror", (run_id,)
        ).fetchall()
        return [_target(r) for r in rows]

    def ok_targets(self, run_id: str, besides: Collection[str] = ()) -> list[TargetRow]:
        """The targets of `run_id` recorded ok, but those of the mirrors in `besides` (whose
        reports are not even read: a run's end asks for the earlier invocations' only)."""
        rows = self.conn.execute(
            "SELECT * FROM publish_targets WHERE run_id = ? AND outcome = 'ok' ORDER BY mirror",
            (run_id,),
        ).fetchall()
        return [_target(r) for r in rows if r["mirror"] not in besides]

    def attempt_count(self, run_id: str, mirror: str) -> int:
        row = self.conn.execute(
            "SELECT attempts FROM publish_targets WHERE run_id = ? AND mirror = ?",
            (run_id, mirror),
        ).fetchone()
        return int(row[0]) if row else 0

    def finish_target(
        self,
        run_id: str,
        mirror: str,
        now: float,
        *,
        outcome: str,
        error: str | None,
        report: Mapping[str, Any] | None,
        versions: Mapping[str, int] | None = None,
        duration_s: float | None = None,
    ) -> None:
        """Record `mirror`'s outcome in this run and its current state, in one transaction.
        An ok outcome is final: it is never overwritten."""
        with self._write():
            self.conn.execute(
                "UPDATE publish_targets SET outcome = ?, error = ?, report = ?, finished_at = ? "
                "WHERE run_id = ? AND mirror = ? AND (outcome IS NULL OR outcome != 'ok')",
                (outcome, _text(error), _json(report), now, run_id, mirror),
            )
            ok = outcome == "ok"
            self.conn.execute(
                "INSERT INTO publish_mirror_state "
                "(mirror, run_id, outcome, at, last_ok_at, versions, duration_s) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (mirror) DO UPDATE SET "
                "run_id = excluded.run_id, outcome = excluded.outcome, at = excluded.at, "
                "last_ok_at = COALESCE(excluded.last_ok_at, last_ok_at), "
                "versions = COALESCE(excluded.versions, versions), "
                "duration_s = COALESCE(excluded.duration_s, duration_s)",
                (
                    mirror,
                    run_id,
                    outcome,
                    now,
                    now if ok else None,
                    _json(dict(versions)) if versions else None,
                    duration_s,
                ),
            )

    # attempts, recorded as they start and as they end
    def start_attempt(
        self,
        run_id: str,
        mirror: str,
        verb: str,
        now: float,
        *,
        source: str | None = None,
        source_reason: str | None = None,
    ) -> tuple[int, int]:
        """Record that an attempt starts (pushed to `source`, for `source_reason`, when the
        run schedules sources); return its row id and its number for this mirror."""
        with self._write():
            self.conn.execute(
                "UPDATE publish_targets SET attempts = attempts + 1 "
                "WHERE run_id = ? AND mirror = ?",
                (run_id, mirror),
            )
            row = self.conn.execute(
                "SELECT attempts FROM publish_targets WHERE run_id = ? AND mirror = ?",
                (run_id, mirror),
            ).fetchone()
            number = int(row[0]) if row else 1
            cur = self.conn.execute(
                "INSERT INTO publish_attempts (run_id, mirror, number, verb, started_at, "
                "source, source_reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, mirror, number, verb, now, source, source_reason),
            )
        return int(cur.lastrowid or 0), number

    def finish_attempt(
        self,
        attempt_id: int,
        now: float,
        *,
        verdict: str,
        outcome: str,
        exit_status: int | None,
        error: str | None,
        report: Mapping[str, Any] | None,
    ) -> None:
        self.conn.execute(
            "UPDATE publish_attempts SET finished_at = ?, verdict = ?, outcome = ?, "
            "exit_status = ?, error = ?, report = ? WHERE id = ?",
            (now, verdict, outcome, exit_status, _text(error), _json(report), attempt_id),
        )

    def attempts(self, run_id: str, mirror: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT * FROM publish_attempts WHERE run_id = ?"
        args: tuple[str, ...] = (run_id,)
        if mirror is not None:
            query += " AND mirror = ?"
            args = (run_id, mirror)
        rows = self.conn.execute(query + " ORDER BY id", args).fetchall()
        return [dict(r) for r in rows]

    # each mirror's current state
    def mirror_states(self) -> list[MirrorPushState]:
        rows = self.conn.execute("SELECT * FROM publish_mirror_state ORDER BY mirror").fetchall()
        return [
            MirrorPushState(
                r["mirror"],
                r["run_id"],
                r["outcome"],
                r["at"],
                r["last_ok_at"],
                _load(r["versions"]),
                r["duration_s"],
            )
            for r in rows
        ]

    def last_durations(self) -> dict[str, float]:
        rows = self.conn.execute(
            "SELECT mirror, duration_s FROM publish_mirror_state WHERE duration_s IS NOT NULL"
        ).fetchall()
        return {r[0]: float(r[1]) for r in rows}

    def last_pushes(self) -> dict[str, tuple[float | None, Any]]:
        """Each mirror's last push: mirror -> (its recorded seconds, the client's report it
        ended with, as recorded, or None). What `syncd.publish.plan.order_seconds` orders the
        next push by; nothing here is written or changed."""
        rows = self.conn.execute(
            "SELECT s.mirror, s.duration_s, t.report FROM publish_mirror_state AS s "
            "LEFT JOIN publish_targets AS t ON t.run_id = s.run_id AND t.mirror = s.mirror"
        ).fetchall()
        out: dict[str, tuple[float | None, Any]] = {}
        for r in rows:
            try:
                report = _load(r["report"])
            except ValueError:  # not JSON (written by hand): no report
                report = None
            seconds = None if r["duration_s"] is None else float(r["duration_s"])
            out[r["mirror"]] = (seconds, report)
        return out

    def recent_reports(self, limit: int = 1000) -> list[dict[str, Any]]:
        """The reports of the last `limit` ok sync attempts, newest first (the measured
        transfers `syncd.publish.sources` learns each source's rate from)."""
        rows = self.conn.execute(
            "SELECT report FROM publish_attempts WHERE verb = 'sync' AND verdict = 'ok' "
            "AND report IS NOT NULL ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [r for r in (_load(row[0]) for row in rows) if isinstance(r, dict)]


def _target(r: sqlite3.Row) -> TargetRow:
    """One row of publish_targets, its report decoded."""
    return TargetRow(
        r["mirror"], r["outcome"], r["attempts"], r["error"], _load(r["report"]), r["finished_at"]
    )
