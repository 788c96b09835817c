"""The propagation of a release, computed from the record's rows (pure): quantiles that only
count mirrors proven to serve it, the publish's proof and the monitor's sight, per source and
per hub, and the TXT's announcement."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from syncd.monitor.freshness import Check
from syncd.release.propagation import (
    DIRECT,
    QUANTILES,
    announced,
    first_seen,
    group_runs,
    monitor_served,
    propagation,
    quantiles,
)
from tests.release.data import RELEASE, START, attempt, run, target

times = st.lists(
    st.one_of(st.none(), st.floats(min_value=-1e6, max_value=1e9, allow_nan=False)), max_size=60
)


@given(times, st.integers(min_value=0, max_value=40), st.floats(min_value=-1e6, max_value=1e9))
def test_quantiles_are_monotone_and_count_only_served_mirrors(
    served: list[float | None], extra_missing: int, start: float
) -> None:
    total = len(served) + extra_missing  # mirrors that never served it are active all the same
    q = quantiles(served, total, start)
    got = [q.get(k) for k in QUANTILES]
    reached = [v for v in got if v is not None]
    assert reached == sorted(reached)  # t50 <= t90 <= t99 <= t100
    # once a share is not reached, no larger share is
    first_none = next((i for i, v in enumerate(got) if v is None), len(got))
    assert all(v is None for v in got[first_none:])
    count = sum(t is not None for t in served)
    assert q.served == count and q.total == total
    for k, v in zip(QUANTILES, got, strict=True):
        need = max(1, math.ceil(k * total / 100)) if total else 0
        # reached exactly when enough mirrors served it: a missing mirror is never counted
        assert (v is not None) == (total > 0 and need <= count)
        if v is not None:
            assert v >= 0
            assert v == max(0.0, sorted(t for t in served if t is not None)[need - 1] - start)
    assert (q.get(100) is not None) == (total > 0 and count == total)


def test_quantiles_of_ten_mirrors() -> None:
    served = [START + 60 * (i + 1) for i in range(9)] + [None]
    q = quantiles(served, 10, START)
    assert (q.get(50), q.get(90), q.get(99), q.get(100)) == (300.0, 540.0, None, None)


def test_publish_proof_monitor_sight_sources_and_hubs() -> None:
    runs = [run("r1"), run("r2", START + 3600)]
    targets = {
        "r1": [
            target("a", START + 100, source_used="rsync1.example"),
            target("hub", START + 200, source_used="rsync2.example"),
            target("b", None, "timeout"),
            target("c", START + 400, source_used="hub"),
            target("d", None, "failed"),
        ],  # d's client said, failing, where it synced from
        "r2": [target("b", START + 3700, source_used="rsync1.example")],
    }
    attempts = {
        "r1": [attempt("r1", m) for m in ("a", "hub", "b", "c")]
        + [{**attempt("r1", "d"), "report": '{"source_used": "rsync2.example"}'}],
        "r2": [attempt("r2", "b", "rsync1.example")],
    }
    # the monitor saw d on both families (the later one counts) and a earlier than its proof
    seen = {"a": {"IPv4": START + 50}, "d": {"IPv4": START + 900, "IPv6": START + 1000}}
    p = propagation(runs, targets, attempts, seen, built_at=START - 600, announced_at=START + 500)
    served = {s.mirror: (s.at, s.by, s.route, s.hub) for s in p.mirrors}
    assert served == {
        "a": (START + 50, "monitor", "rsync1.example", False),
        "b": (START + 3700, "publish", "rsync1.example", False),
        "c": (START + 400, "publish", "hub", True),
        "d": (START + 1000, "monitor", "rsync2.example", False),
        "hub": (START + 200, "publish", "rsync2.example", False),
    }
    assert p.from_start.seconds == {50: 400.0, 90: 3700.0, 99: 3700.0, 100: 3700.0}
    assert p.from_build is not None and p.from_build.get(50) == 1000.0
    assert p.by_hub["hub"].seconds[100] == 400.0
    assert p.by_source["rsync1.example"].served == 2
    assert p.missing == ()
    assert p.announce_delay_s == 500.0
    assert p.runs == ("r1", "r2")
    assert p.to_json()["from_start_s"] == {
        "t50": 400.0,
        "t90": 3700.0,
        "t99": 3700.0,
        "t100": 3700.0,
    }


def test_a_mirror_never_proven_is_missing_and_blocks_t100() -> None:
    p = propagation(
        [run("r1")],
        {"r1": [target("a", START + 10), target("b", START + 20, "failed")]},
        {},
        {"b": {"IPv4": START + 30, "IPv6": None}},  # one family never saw it
    )
    assert p.missing == ("b",)
    assert [s.route for s in p.mirrors] == [DIRECT, DIRECT]  # no source named anywhere
    assert p.from_start.get(50) == 10.0 and p.from_start.get(100) is None
    assert p.from_build is None  # no build time known


def test_first_seen_needs_every_database_on_each_family() -> None:
    checks = {
        "IPv4": [
            Check(START - 10, True, versions={**RELEASE}),  # before the publish: not counted
            Check(START + 10, True, versions={**RELEASE, "daily": 28034}),
            Check(START + 20, False),
            Check(START + 30, True, versions={**RELEASE, "daily": 28036}),
        ],
        "IPv6": [Check(START + 5, True, versions={"daily": 28035})],  # main, bytecode missing
        "any": [Check(START - 100, True, versions=RELEASE)],  # not checked since
    }
    seen = first_seen(checks, RELEASE, START)
    assert seen == {"IPv4": START + 30, "IPv6": None}
    assert monitor_served(seen) is None
    assert monitor_served({"IPv4": START + 30}) == START + 30
    assert monitor_served({}) is None


def test_runs_grouped_per_release_and_the_txt_that_announced_it() -> None:
    older = {**RELEASE, "daily": 28034}
    groups = group_runs([run("a", START, older), run("b", START + 10), run("c", START + 20)])
    assert [[r.run_id for r in g] for g in groups] == [["b", "c"], ["a"]]
    txts = [(START + 50, older), (START + 90, dict(RELEASE)), (START + 70, dict(RELEASE))]
    assert announced(txts, RELEASE) == START + 70
    assert announced(txts, {**RELEASE, "daily": 1}) is None
