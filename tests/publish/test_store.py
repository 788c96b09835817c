"""The publish record: migrations, attempts as they happen, ok is final."""

from __future__ import annotations

from pathlib import Path

from syncd.publish.store import MIGRATIONS, PublishStore
from syncd.sqlite import open_db


def test_record_survives_reopen_and_ok_is_final(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite"
    store = PublishStore(open_db(db))
    store.create_run(
        "R",
        1.0,
        expected={"daily": 5},
        request="sync run-id=R expect-daily=5",
        inventory="inv.toml",
        mirrors=["a", "b"],
    )
    attempt, number = store.start_attempt("R", "a", "sync", 2.0)
    assert number == 1
    store.finish_attempt(
        attempt, 3.0, verdict="ok", outcome="ok", exit_status=0, error=None, report={"status": "ok"}
    )
    store.finish_target(
        "R",
        "a",
        3.0,
        outcome="ok",
        error=None,
        report={"status": "ok"},
        versions={"daily": 5},
        duration_s=1.0,
    )
    store.start_attempt("R", "b", "sync", 2.0)  # in flight when syncd dies
    store.conn.close()

    again = PublishStore(open_db(db))  # migrations are not applied twice
    row = again.conn.execute(
        "SELECT version FROM schema_versions WHERE component = 'publish'"
    ).fetchone()
    assert row[0] == len(MIGRATIONS)
    targets = {t.mirror: t for t in again.targets("R")}
    assert (targets["a"].outcome, targets["a"].attempts) == ("ok", 1)
    assert (targets["b"].outcome, targets["b"].attempts) == (None, 1)
    again.finish_target("R", "a", 9.0, outcome="cancelled", error="x", report=None)
    assert {t.mirror: t.outcome for t in again.targets("R")}["a"] == "ok"
    assert again.last_durations() == {"a": 1.0}
    assert again.run("R") is not None and again.run("R").expected == {"daily": 5}  # type: ignore[union-attr]
    assert again.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
