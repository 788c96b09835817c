"""The maintenance notices in the record (``syncd.monitor.notices``): a window the mirror's
report carries is in effect for the gate as much as one read over HTTP, and the newest word of
the mirror counts. Real SQLite, the publish record written as a publish writes it.

Proven to fail: with `NoticeStore.reports` keeping only each mirror's newest report, the
older client's and the bad notice's cases failed (their window was dropped); with the
reports read oldest last (``ORDER BY finished_at DESC``), the cancel case failed; reading
only the newest run, the older client's case failed."""

from __future__ import annotations

from pathlib import Path

from devtools.harness.documents import lab_inventory
from pushwire.maintenance import Notice, to_json
from syncd.inventory.model import parse_inventory
from syncd.monitor.maintenance import HTTP, REPORT, Sighting, Window
from syncd.monitor.notices import NoticeStore, in_effect
from syncd.publish.store import PublishStore
from syncd.sqlite import open_db

T = 1_800_000_000.0
H = 3600.0
INV = parse_inventory(
    lab_inventory(
        [{"name": n, "host": "127.0.0.1", "country": "PL"} for n in ("pl1", "pl2", "pl3")]
    )
)


def _report(state: Path, mirror: str, at: float, maintenance: object, *, key: bool = True) -> None:
    store = PublishStore(open_db(state))
    run = f"run-{mirror}-{at}"
    store.create_run(run, at, expected={}, request="sync", inventory=None, mirrors=[mirror])
    report: dict[str, object] = {"report_version": 1, "status": "ok"}
    if key:
        report["maintenance"] = maintenance
    store.finish_target(run, mirror, at, outcome="ok", error=None, report=report, versions={})
    store.conn.close()


def _on(state: Path, now: float) -> dict[str, Window]:
    conn = open_db(state)
    try:
        return in_effect(conn, INV, now, lead=0, max_s=7 * 86400)
    finally:
        conn.close()


def test_a_report_s_window_holds_until_a_newer_word(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    window = to_json(Notice(T, T + 2 * H, "reboot"))
    _report(state, "pl1", T - H, window)
    _report(state, "pl2", T - H, window)
    _report(state, "pl3", T - H, window)
    assert set(_on(state, T + H)) == {"pl1", "pl2", "pl3"}
    assert _on(state, T + H)["pl1"].origin == REPORT
    _report(state, "pl1", T - 60, None)  # the newer report: cancelled
    _report(state, "pl2", T - 60, None, key=False)  # an older client: says nothing
    _report(state, "pl3", T - 60, {"maintenance_version": "x"})  # no notice: says nothing
    assert set(_on(state, T + H)) == {"pl2", "pl3"}
    conn = open_db(state)
    NoticeStore(conn).save([("pl2", Sighting(HTTP, T, None))])  # read over HTTP later: gone
    conn.close()
    assert set(_on(state, T + H)) == {"pl3"}


def test_an_http_sighting_survives_a_restart_of_the_record(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    conn = open_db(state)
    w = Window(T, T + H, "new disks", HTTP)
    NoticeStore(conn).save([("pl1", Sighting(HTTP, T - 10, w))])
    conn.close()
    assert _on(state, T + 60) == {"pl1": w}
    assert _on(state, T + H) == {}  # past its end: ignored
