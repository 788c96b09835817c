"""The monitor's part of the record: every check, every transition with its reason, each
mirror's freshness per address family, and when each admin was last mailed."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence

from syncd.monitor.freshness import Check, Record, State, Transition
from syncd.sqlite import migrate

MIGRATIONS = [
    """
    CREATE TABLE monitor_checks (
        id INTEGER PRIMARY KEY,
        mirror TEXT NOT NULL,
        family TEXT NOT NULL,
        at REAL NOT NULL,
        ok INTEGER NOT NULL,
        timestamp REAL,
        versions TEXT,
        error TEXT
    );
    CREATE INDEX monitor_checks_mirror_at ON monitor_checks (mirror, at);
    CREATE TABLE monitor_state (
        mirror TEXT NOT NULL,
        family TEXT NOT NULL,
        state TEXT NOT NULL,
        since REAL NOT NULL,
        good_streak INTEGER NOT NULL,
        failed_streak INTEGER NOT NULL,
        last_check_at REAL,
        PRIMARY KEY (mirror, family)
    );
    CREATE TABLE monitor_transitions (
        id INTEGER PRIMARY KEY,
        mirror TEXT NOT NULL,
        family TEXT NOT NULL,
        at REAL NOT NULL,
        old TEXT NOT NULL,
        new TEXT NOT NULL,
        reason TEXT NOT NULL,
        mailed INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE monitor_mail (
        mirror TEXT PRIMARY KEY,
        last_sent_at REAL NOT NULL
    )
    """,
    # release files (the current cdiff, .sign files) a check found not served whole
    """
    ALTER TABLE monitor_checks ADD COLUMN incomplete TEXT
    """,
    # the status page reads each mirror's transitions over the last 30 days
    """
    CREATE INDEX monitor_transitions_mirror_at ON monitor_transitions (mirror, at)
    """,
    # a transition whose mail was not sent: the next pass sends it again (while it is the
    # mirror's newest on that family)
    """
    ALTER TABLE monitor_transitions ADD COLUMN mail_due INTEGER NOT NULL DEFAULT 0
    """,
    # the outage guard: one row while the monitor suspects itself (syncd.monitor.outage)
    """
    CREATE TABLE monitor_guard (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        since REAL NOT NULL,
        reason TEXT NOT NULL,
        mailed INTEGER NOT NULL DEFAULT 0
    )
    """,
]


def _check(r: sqlite3.Row) -> Check:
    """One stored check, as the record keeps it."""
    return Check(
        r["at"],
        bool(r["ok"]),
        r["timestamp"],
        json.loads(r["versions"]) if r["versions"] else None,
        r["error"],
        tuple(json.loads(r["incomplete"])) if r["incomplete"] else (),
    )


class MonitorStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        migrate(conn, "monitor", MIGRATIONS)

    def records(self) -> dict[tuple[str, str], Record]:
        rows = self.conn.execute(
            "SELECT mirror, family, state, since, good_streak, failed_streak FROM monitor_state"
        )
        return {
            (r["mirror"], r["family"]): Record(
                State(r["state"]), r["since"], r["good_streak"], r["failed_streak"]
            )
            for r in rows
        }

    def save(self, items: Iterable[tuple[str, str, Check, Record, Transition | None]]) -> list[int]:
        """Record checks, new records and transitions in one transaction; return transition ids."""
        ids = []
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for mirror, family, check, rec, transition in items:
                self.conn.execute(
                    "INSERT INTO monitor_checks "
                    "(mirror, family, at, ok, timestamp, versions, error, incomplete) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        mirror,
                        family,
                        check.at,
                        int(check.ok),
                        check.timestamp,
                        json.dumps(dict(check.versions)) if check.versions else None,
                        check.error,
                        json.dumps(list(check.incomplete)) if check.incomplete else None,
                    ),
                )
                self.conn.execute(
                    "INSERT INTO monitor_state VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(mirror, family) DO UPDATE SET state = excluded.state, "
                    "since = excluded.since, good_streak = excluded.good_streak, "
                    "failed_streak = excluded.failed_streak, "
                    "last_check_at = excluded.last_check_at",
                    (
                        mirror,
                        family,
                        rec.state.value,
                        rec.since,
                        rec.good_streak,
                        rec.failed_streak,
                        check.at,
                    ),
                )
                if transition is not None:
                    cur = self.conn.execute(
                        "INSERT INTO monitor_transitions (mirror, family, at, old, new, reason)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            mirror,
                            family,
                            transition.at,
                            transition.old.value,
                            transition.new.value,
                            transition.reason,
                        ),
                    )
                    ids.append(int(cur.lastrowid or 0))
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        return ids

    def checks(self, mirror: str, since: float) -> list[Check]:
        rows = self.conn.execute(
            "SELECT at, ok, timestamp, versions, error, incomplete FROM monitor_checks "
            "WHERE mirror = ? AND at >= ? ORDER BY at",
            (mirror, since),
        )
        return [_check(r) for r in rows]

    def history(self, mirror: str, since: float) -> dict[str, list[Check]]:
        """The mirror's checks made at or after `since`, per address family, oldest first."""
        rows = self.conn.execute(
            "SELECT family, at, ok, timestamp, versions, error, incomplete FROM monitor_checks "
            "WHERE mirror = ? AND at >= ? ORDER BY at, id",
            (mirror, since),
        )
        out: dict[str, list[Check]] = {}
        for r in rows:
            out.setdefault(r["family"], []).append(_check(r))
        return out

    def state_history(self, mirror: str, since: float) -> dict[str, list[tuple[float, str, str]]]:
        """The mirror's transitions as (at, old, new) per address family, oldest first: those at
        or after `since`, and the last one before it (the state the window starts in)."""
        rows = self.conn.execute(
            "SELECT family, at, old, new FROM monitor_transitions WHERE mirror = ? AND "
            "(at >= ? OR id IN (SELECT max(id) FROM monitor_transitions "
            "WHERE mirror = ? AND at < ? GROUP BY family)) ORDER BY at, id",
            (mirror, since, mirror, since),
        )
        out: dict[str, list[tuple[float, str, str]]] = {}
        for r in rows:
            out.setdefault(r["family"], []).append((r["at"], r["old"], r["new"]))
        return out

    def transitions(self, mirror: str | None = None, limit: int = 100) -> list[sqlite3.Row]:
        query = "SELECT * FROM monitor_transitions"
        args: tuple[object, ...] = ()
        if mirror is not None:
            query += " WHERE mirror = ?"
            args = (mirror,)
        return list(self.conn.execute(query + " ORDER BY at DESC, id DESC LIMIT ?", (*args, limit)))

    def last_mailed(self, mirror: str) -> float | None:
        row = self.conn.execute(
            "SELECT last_sent_at FROM monitor_mail WHERE mirror = ?", (mirror,)
        ).fetchone()
        return float(row[0]) if row else None

    def mark_mailed(self, mirror: str, at: float, transition_ids: Sequence[int]) -> None:
        self.conn.execute(
            "INSERT INTO monitor_mail VALUES (?, ?) ON CONFLICT(mirror) DO UPDATE SET "
            "last_sent_at = excluded.last_sent_at",
            (mirror, at),
        )
        self.conn.executemany(
            "UPDATE monitor_transitions SET mailed = 1, mail_due = 0 WHERE id = ?",
            [(i,) for i in transition_ids],
        )

    def mark_due(self, transition_ids: Sequence[int]) -> None:
        """The mails of these transitions were not sent: the next pass tries again."""
        self.conn.executemany(
            "UPDATE monitor_transitions SET mail_due = 1 WHERE id = ?",
            [(i,) for i in transition_ids],
        )

    def due(self) -> list[tuple[int, str, str, Transition]]:
        """(id, mirror, family, transition) of each transition whose mail is still due and that
        is still its mirror's newest on that family (older news is not sent)."""
        rows = self.conn.execute(
            "SELECT * FROM monitor_transitions t WHERE t.mail_due = 1 AND t.mailed = 0 AND "
            "t.id = (SELECT MAX(u.id) FROM monitor_transitions u "
            "WHERE u.mirror = t.mirror AND u.family = t.family) ORDER BY t.id"
        )
        return [
            (
                r["id"],
                r["mirror"],
                r["family"],
                Transition(State(r["old"]), State(r["new"]), r["at"], r["reason"]),
            )
            for r in rows
        ]

    def prune(self, before: float) -> int:
        """Drop checks older than `before` (retention); transitions are kept."""
        return self.conn.execute("DELETE FROM monitor_checks WHERE at < ?", (before,)).rowcount

    def suspect(self, at: float, reason: str) -> bool:
        """The monitor suspects itself as of `at`; return True when this begins an episode
        whose team mail is not yet sent."""
        self.conn.execute(
            "INSERT OR IGNORE INTO monitor_guard (id, since, reason, mailed) VALUES (1, ?, ?, 0)",
            (at, reason),
        )
        row = self.conn.execute("SELECT mailed FROM monitor_guard WHERE id = 1").fetchone()
        return not row["mailed"]

    def mailed_suspicion(self) -> None:
        self.conn.execute("UPDATE monitor_guard SET mailed = 1 WHERE id = 1")

    def trusted(self) -> None:
        """The monitor trusts its checks again: the episode ends."""
        self.conn.execute("DELETE FROM monitor_guard")
