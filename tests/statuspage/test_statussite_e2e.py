"""The status site from a real monitor pass: real nginx mirrors, the record (SQLite) with its
history per address family and the publish runs, the gate; then the history queries alone."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import jsonschema
from typer.testing import CliRunner

from devtools.harness.cvd import write_release
from devtools.harness.documents import LAB_INVENTORY
from devtools.harness.faultproxy import closed_port
from devtools.harness.nginx import Nginx
from syncd.cli import app
from syncd.monitor.config import MonitorConfig
from syncd.monitor.freshness import Check, Record, State, Transition
from syncd.monitor.run import run_pass
from syncd.monitor.store import MonitorStore
from syncd.publish.store import PublishStore
from syncd.sqlite import open_db
from syncd.statuspage.site import page_name
from tests.monitor.test_monitor_e2e import _docroot, _mirror, released

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "status.schema.json").read_text())


def test_a_monitor_pass_publishes_the_site_with_history_runs_and_the_gate(
    tmp_path: Path, nginx_factory: Callable[..., Nginx]
) -> None:
    source = tmp_path / "source"
    write_release(source, 28034, build_time=released())
    fresh = nginx_factory(_docroot(tmp_path, "fresh", 28034, 0.5))
    lagging = nginx_factory(_docroot(tmp_path, "lag", 28033, 0.5))
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(
        LAB_INVENTORY
        + _mirror("fresh.example", fresh.base_url, "Fresh Admin <fresh@example.org>")
        + _mirror("lag.example", lagging.base_url, "Lag Admin <lag@example.org>")
        + _mirror("gone.example", f"http://127.0.0.1:{closed_port()}", "Gone <gone@example.org>")
    )
    state = tmp_path / "state.sqlite"
    # a publish run that reached fresh.example and failed on lag.example
    conn = open_db(state)
    pstore = PublishStore(conn)
    started = time.time() - 3600
    pstore.create_run(
        "run-1",
        started,
        expected={"daily": 28034},
        request="sync",
        inventory=None,
        mirrors=["fresh.example", "lag.example"],
    )
    pstore.finish_target(
        "run-1",
        "fresh.example",
        started + 30,
        outcome="ok",
        error=None,
        report=None,
        versions={"daily": 28034, "main": 62, "bytecode": 335},
    )
    pstore.finish_target(
        "run-1",
        "lag.example",
        started + 60,
        outcome="timeout",
        error="no answer in 900 s",
        report=None,
    )
    pstore.finish_run("run-1", started + 60, "failed")
    conn.close()
    index = tmp_path / "www" / "index.html"
    stale = index.parent / "mirrors" / "retired.example.html"
    stale.parent.mkdir(parents=True)
    stale.write_text("a mirror that left the inventory")
    cfg = MonitorConfig(status_page=index, unreachable_after=1, lagging_grace_h=1)
    for _ in range(2):
        run_pass(
            inventory=inventory,
            state=state,
            source_tree=source,
            cfg=cfg,
            send_mail=False,
            clock=time.time,
            gate_share=0.5,
        )
    doc = json.loads((index.parent / "status.json").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    mirrors = {m["name"]: m for m in doc["mirrors"]}
    assert {n: m["state"] for n, m in mirrors.items()} == {
        "fresh.example": "fresh",
        "lag.example": "lagging",
        "gone.example": "unreachable",
    }
    # the history per family: two checks each, over IPv4 (the harness listens on 127.0.0.1)
    fam = mirrors["fresh.example"]["families"]
    assert [f["family"] for f in fam] == ["IPv4"] and fam[0]["windows"]["7d"]["checks"] == 2
    assert mirrors["gone.example"]["families"][0]["last_check_ok"] is False
    # publish outcomes per run
    assert [(r["run_id"], r["outcome"]) for r in mirrors["lag.example"]["publish_runs"]] == [
        ("run-1", "timeout")
    ]
    assert doc["release"]["versions"]["daily"] == 28034
    # the gate: 1 of 3 serves it (fresh.example's publish and check agree), below half
    assert doc["gate"]["open"] is False and doc["gate"]["required_share"] == 0.5
    assert set(doc["gate"]["held_back_by"]) == {"gone.example", "lag.example"}
    overview = index.read_text()
    assert "Release gate" in overview and "closed" in overview and "28034" in overview
    for name in mirrors:
        page = (index.parent / page_name(name)).read_text()
        assert f"<h1>{name}</h1>" in page
        assert page.count("<svg ") == 4
    lag_page = (index.parent / page_name("lag.example")).read_text()
    assert (
        "no answer in 900 s" in lag_page and "serves daily 28033 instead of daily 28034" in lag_page
    )
    assert not stale.exists()

    # the same site from the command line, elsewhere: --status-page
    config = tmp_path / "syncd.toml"
    config.write_text(f'inventory = "{inventory}"\nstate = "{state}"\nsource_tree = "{source}"\n')
    other = tmp_path / "elsewhere" / "index.html"
    result = CliRunner().invoke(
        app,
        ["monitor", "--once", "--no-mail", "--config", str(config), "--status-page", str(other)],
    )
    assert result.exit_code == 0, result.output
    again = json.loads((other.parent / "status.json").read_text())
    assert again["gate"] is None  # no [dns]: no gate
    assert (other.parent / page_name("gone.example")).exists()


def test_history_is_per_family_and_starts_in_the_state_the_window_opens_in(
    tmp_path: Path,
) -> None:
    conn = open_db(tmp_path / "s.sqlite")
    store = MonitorStore(conn)
    t0 = 1_000_000.0  # on the record's own time line, never compared to now (noqa: date)
    items = []
    for k, (fam, ok) in enumerate(
        [("IPv4", True), ("IPv6", False), ("IPv4", True), ("IPv6", True)]
    ):
        at = t0 + k * 100
        check = Check(at, ok, at - 50 if ok else None, {"daily": 1} if ok else None)
        items.append(("m", fam, check, Record(State.FRESH, t0), None))
    store.save(items)
    store.save(
        [
            ("m", "IPv6", Check(t0 - 500, True, t0 - 600), Record(State.OLD, t0 - 500),
             Transition(State.UNKNOWN, State.OLD, t0 - 500, "first check")),
            ("m", "IPv6", Check(t0 + 350, True, t0 + 300), Record(State.FRESH, t0 + 350),
             Transition(State.OLD, State.FRESH, t0 + 350, "again")),
            ("other", "IPv4", Check(t0, True, t0), Record(State.FRESH, t0),
             Transition(State.UNKNOWN, State.FRESH, t0, "first check")),
        ]
    )  # fmt: skip
    history = store.history("m", t0)
    assert sorted(history) == ["IPv4", "IPv6"]
    assert [c.ok for c in history["IPv6"]] == [False, True, True]
    assert [c.at for c in history["IPv4"]] == [t0, t0 + 200]
    # the window opens at t0: the transition before it says the state it opened in
    assert store.state_history("m", t0) == {
        "IPv6": [(t0 - 500, "unknown", "old"), (t0 + 350, "old", "fresh")]
    }
    assert store.state_history("m", t0 + 400) == {"IPv6": [(t0 + 350, "old", "fresh")]}
    indexes = {
        r[1]
        for r in sqlite3.connect(tmp_path / "s.sqlite").execute(
            "PRAGMA index_list('monitor_transitions')"
        )
    }
    assert "monitor_transitions_mirror_at" in indexes
