"""The query modules other features read a record through write nothing: once the schema
exists, every method runs with SQLite's ``query_only`` on (a write would raise) and the
connection's change count does not move; and what they return matches the store's reading.

Proven to fail: with `PublishQuery.recent_target_reports` made to touch a row first
(``UPDATE publish_targets SET error = error``), the query_only run raised "attempt to write a
readonly database"."""

from __future__ import annotations

from pathlib import Path

from devtools.harness.documents import lab_inventory
from devtools.harness.record import record_publish
from syncd.dns.query import held_pool_ttl, txt_sent
from syncd.inventory.model import parse_inventory
from syncd.monitor.freshness import Check, Record, State
from syncd.monitor.query import MonitorQuery, first_seen, windows_in_effect
from syncd.monitor.store import MonitorStore
from syncd.publish.query import PublishQuery
from syncd.sqlite import open_db

T = 1_000_000.0
RELEASE = {"daily": 28034, "main": 62, "bytecode": 335}


def test_every_query_reads_only(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    run = record_publish(state, {"a.test": True, "b.test": False}, RELEASE, at=T)
    inv = parse_inventory(
        lab_inventory(
            [{"name": n, "host": "127.0.0.1", "country": "PL"} for n in ("a.test", "b.test")]
        ),
        "inventory.toml",
    )
    conn = open_db(state)
    try:
        check = Check(T + 60, True, int(T), RELEASE, None)
        MonitorStore(conn).save([("a.test", "IPv4", check, Record(State.FRESH, T, 1, 0), None)])
        publish, monitor = PublishQuery(conn), MonitorQuery(conn)  # the schema made
        windows_in_effect(conn, inv, T, interval_s=600, pool_ttl=60, max_s=86_400)
        before = conn.total_changes
        conn.execute("PRAGMA query_only = ON")
        states = publish.mirror_states()
        runs = publish.runs(10)
        read = (
            publish.run(run),
            publish.targets(run),
            publish.attempts(run),
            publish.outcome_counts([run]),
            publish.recent_target_reports(20),
            monitor.records(),
            monitor.latest_good("b.test"),
            first_seen(conn, ["a.test"], RELEASE, T),
            windows_in_effect(conn, inv, T, interval_s=600, pool_ttl=60, max_s=86_400),
            held_pool_ttl(conn),
            txt_sent(conn),
        )
        latest = monitor.latest_good("a.test")
        conn.execute("PRAGMA query_only = OFF")
        assert conn.total_changes == before
    finally:
        conn.close()
    assert states["a.test"].outcome == "ok" and states["b.test"].outcome == "failed"
    assert [r.run_id for r in runs] == [run] and read[0] is not None
    assert latest == check and read[6] is None
    assert read[7] == {"a.test": {"IPv4": T + 60}}
    assert read[9] == 0 and read[10] == []
