"""The soak's faults are registered under the names the CLI and the record use, in the order
the seed shuffles: a seed replays the same faults in the same order, each round its own draws;
a fault fires only by its own counters; a violation says why (no servers needed)."""

from __future__ import annotations

import contextlib
import json
import random
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from benchmarks.soak import replay_range
from devtools.harness.faultproxy import FaultProxy, closed_port
from devtools.harness.soak import (
    CI_MIRRORS,
    CI_SEED,
    FAULTS,
    REGISTRY,
    SoakFleet,
    invariants,
    record,
)
from devtools.harness.soak.faults import Round
from devtools.harness.soak.fleet import Fleet, Mirror

NAMES = (
    "none",
    "ssh_stall",
    "ssh_drop",
    "ssh_delay",
    "rsync_stall",
    "rsync_drop",
    "rsync_refuse",
    "kill_syncd",
    "stop_syncd",
    "kill_client",
    "stop_client",
    "kill_rsync",
    "kill_sshd",
    "kill_rsyncd",
    "stop_rsyncd",
    "churn_source",
    "disk_full",
    "double_publish",
)


def test_registry_keeps_every_name_in_its_order() -> None:
    assert FAULTS == NAMES
    assert all(cls.name == name for name, cls in REGISTRY.items())


def test_the_ci_seed_replays_the_same_first_pass() -> None:
    fleet = SoakFleet(Path("/nonexistent"), 3, 20261125)  # the CI seed (tests/faults/conftest.py)
    order = [fleet.pick_fault(n, FAULTS) for n in range(len(FAULTS))]
    # drawn by the soak before its faults became classes: the same seed, the same order
    assert order == [
        "rsync_drop",
        "kill_rsync",
        "disk_full",
        "kill_sshd",
        "kill_rsyncd",
        "rsync_stall",
        "kill_client",
        "ssh_stall",
        "kill_syncd",
        "ssh_drop",
        "rsync_refuse",
        "churn_source",
        "double_publish",
        "ssh_delay",
        "stop_syncd",
        "stop_rsyncd",
        "stop_client",
        "none",
    ]


def test_round_draws_depend_on_seed_and_round_only() -> None:
    ci = SoakFleet(Path("/nonexistent"), CI_MIRRORS, CI_SEED)
    long = SoakFleet(Path("/nonexistent"), 4, CI_SEED)
    for n in (0, 1, 17, 18, 40):
        assert ci.pick_fault(n, FAULTS) == long.pick_fault(n, FAULTS)
        assert ci.round_rng(n).random() == long.round_rng(n).random()
    # round 9 draws the same whether or not rounds 0-8 ran before it
    fresh = SoakFleet(Path("/nonexistent"), CI_MIRRORS, CI_SEED)
    assert [fresh.round_rng(9).random() for _ in range(3)] == [
        ci.round_rng(9).random() for _ in range(3)
    ]
    assert ci.round_rng(9).random() != ci.round_rng(10).random()
    assert replay_range("20261125:3") == (CI_SEED, range(3, 4))
    assert replay_range("7:0-2") == (7, range(3))
    for bad in ("7", "7:x", "x:1", "7:3-1", "7:1-"):
        with pytest.raises(ValueError, match="--replay"):
            replay_range(bad)


def _proxy_round(proxy: FaultProxy) -> tuple[Fleet, Round]:
    victim = SimpleNamespace(name="m0.soak.test", proxy=proxy)
    fleet = SimpleNamespace(mirrors=[victim], rproxy=[proxy, proxy])
    r = Round(victim=cast("Mirror", victim), delay=0.0, runs_before=set())
    r.mark([proxy])
    return cast("Fleet", fleet), r


def test_a_proxy_fault_fired_only_by_its_own_counter_this_round() -> None:
    with FaultProxy("127.0.0.1", closed_port()) as proxy:
        proxy.stats.dropped = 5  # an earlier round's drops are not this round's
        proxy.stats.stalled = 2
        fleet, r = _proxy_round(proxy)
        drop = REGISTRY["ssh_drop"](fleet)
        drop.draw(random.Random(1))
        drop.arm(r)
        assert proxy.mode == "drop"
        assert drop.evidence(r) is None
        assert invariants.fault_fired("ssh_drop", None) == [
            "ssh_drop did not fire this round: the round proved nothing"
        ]
        proxy.stats.stalled += 1  # another counter moving proves nothing for a drop
        assert drop.evidence(r) is None
        proxy.stats.dropped += 1
        found = drop.evidence(r)
        assert found and "dropped 1 this round" in found and "m0.soak.test" in found
        assert invariants.fault_fired("ssh_drop", found) == []
        assert invariants.fault_fired("none", None) == []
        # the drop point is a share of the last whole session, so it falls inside one
        proxy.stats.last_session_down = 4800
        for seed in range(20):
            d = REGISTRY["ssh_drop"](fleet)
            d.draw(random.Random(seed))
            d.arm(r)
            assert 0 <= proxy.drop_after < 4800


def test_a_violation_carries_the_attempts_their_errors_and_the_reports(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite"
    report = {
        "status": "failed",
        "error": {"kind": "rsync_failed", "message": "every source failed"},
        "attempts": [
            {"source": "rsync1.clamav.net", "exit_code": -9, "error": "killed by signal 9"},
            {"source": "rsync2.clamav.net", "exit_code": 23, "error": "partial transfer"},
        ],
        "databases": {"daily": {"version": 1}},
    }
    with contextlib.closing(sqlite3.connect(db)) as c:
        c.execute(
            "CREATE TABLE publish_attempts (id INTEGER PRIMARY KEY, run_id TEXT, mirror TEXT, "
            "number INTEGER, verb TEXT, outcome TEXT, exit_status INTEGER, error TEXT, report TEXT)"
        )
        c.execute(
            "INSERT INTO publish_attempts VALUES (1, 'R1', 'm0', 1, 'sync', 'failed', 1, "
            "'client reported failure', ?)",
            (json.dumps(report),),
        )
        c.commit()
    text = record.diagnosis(db, "R1")
    for part in ("m0 #1 sync: failed exit 1", "client reported failure", "every source failed"):
        assert part in text
    assert "killed by signal 9" in text and "partial transfer" in text
    assert "databases" not in text  # what says why, not the whole report
    assert "none" in record.diagnosis(db, "R2")
