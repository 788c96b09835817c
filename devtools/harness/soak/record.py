"""What the soak reads of syncd: its record (the SQLite state file, read-only and tolerant of a
record that does not exist yet or is being written) and its JSON summary."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any


def run_ids(db: Path) -> set[str]:
    """Return every run recorded in `db` (none when it does not exist yet)."""
    if not db.exists():
        return set()
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        try:
            return {r[0] for r in conn.execute("SELECT run_id FROM publish_runs")}
        except sqlite3.OperationalError:
            return set()


def new_run_id(db: Path, before: set[str]) -> str | None:
    """The run a publish recorded since `before`, if it got that far; raise AssertionError
    when one publish recorded several."""
    new = run_ids(db) - before
    if len(new) > 1:
        raise AssertionError(f"one publish recorded several runs: {sorted(new)}")
    return new.pop() if new else None


def attempts(db: Path, run_id: str, *, only_ok: bool) -> dict[str, int]:
    """Return mirror -> attempts recorded in `run_id` (only mirrors ok already, or all)."""
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as c:
        ok = {
            r[0]
            for r in c.execute(
                "SELECT mirror FROM publish_targets WHERE run_id = ? AND outcome = 'ok'",
                (run_id,),
            )
        }
        rows = c.execute(
            "SELECT mirror, count(*) FROM publish_attempts WHERE run_id = ? GROUP BY mirror",
            (run_id,),
        ).fetchall()
    return {m: n for m, n in rows if m in ok or not only_ok}


def targets(db: Path, run_id: str) -> tuple[list[tuple[str, str | None]], str]:
    """Return (mirror, outcome) per target of `run_id`, and the run's state."""
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as c:
        rows = c.execute(
            "SELECT mirror, outcome FROM publish_targets WHERE run_id = ?", (run_id,)
        ).fetchall()
        (state,) = c.execute(
            "SELECT state FROM publish_runs WHERE run_id = ?", (run_id,)
        ).fetchone()
    return rows, state


def progress(db: Path, known: set[str]) -> int:
    """Return how many mirrors of the newest run not in `known` have an outcome (-1: none)."""
    if not db.exists():
        return -1
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as c:
            runs = [r[0] for r in c.execute("SELECT run_id FROM publish_runs")]
            new = [r for r in runs if r not in known]
            if not new:
                return -1
            (count,) = c.execute(
                "SELECT count(*) FROM publish_targets WHERE run_id = ? AND outcome IS NOT NULL",
                (new[0],),
            ).fetchone()
            return int(count)
    except sqlite3.Error:
        return -1


def parse_json(text: str) -> dict[str, Any]:
    """Return syncd's JSON summary from its stdout ({} when there is none)."""
    try:
        doc = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def summary_outcomes(doc: dict[str, Any]) -> dict[str, str]:
    """Return mirror -> outcome from a summary."""
    return {m.get("name", "?"): m.get("outcome", "?") for m in doc.get("mirrors", [])}


def diagnosis(db: Path, run_id: str | None, limit: int = 700) -> str:
    """Return every attempt of `run_id` as recorded: mirror, number, outcome, exit status,
    syncd's error and the client's report (its status, error and rsync attempts), one a line."""
    if not run_id or not db.exists():
        return "no run recorded"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
        rows = c.execute(
            "SELECT mirror, number, verb, outcome, exit_status, error, report FROM "
            "publish_attempts WHERE run_id = ? ORDER BY mirror, id",
            (run_id,),
        ).fetchall()
    lines = [f"attempts of run {run_id}:"]
    for mirror, number, verb, outcome, status, error, report in rows:
        lines.append(
            f"  {mirror} #{number} {verb}: {outcome} exit {status} error {error!r} "
            f"report {client_report(report)[:limit]}"
        )
    return "\n".join(lines if rows else [*lines, "  none"])


def client_report(text: str | None) -> str:
    """The part of a client's report that says why: status, error and each rsync attempt."""
    if not text:
        return "none"
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return repr(text[:200])
    if not isinstance(doc, dict):
        return repr(text[:200])
    keep = {k: doc.get(k) for k in ("status", "error", "source_used", "attempts") if k in doc}
    return json.dumps(keep, separators=(",", ":"))
