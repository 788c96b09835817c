"""The push order: slowest first by each mirror's own sync time (its client's report), never
more than the push syncd recorded, the push's time when there is no report; the record's
meaning (`duration_s`: the whole push) unchanged."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from syncd.inventory.model import Inventory, Mirror
from syncd.publish.plan import order_seconds, own_sync_seconds, plan
from syncd.publish.store import PublishStore
from syncd.sqlite import open_db

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE4g3v7tDPFq4GeL5Gm5cBVJzvL7xiqsC6kdjrC6Ldqp"


def fleet(*names: str) -> Inventory:
    mirrors = [
        Mirror(name=n, host=f"10.0.0.{i}", country="DE", host_keys=[KEY])
        for i, n in enumerate(names, start=1)
    ]
    return Inventory(allow_private_addresses=True, mirrors=mirrors)


def ok(seconds: object) -> dict[str, Any]:
    return {"status": "ok", "duration_s": seconds}


def test_the_plan_orders_by_the_clients_own_sync_time() -> None:
    """`fast` waited 90 s for its hub but its own pull took 5 s; `slow` took 48 s of its 50:
    `slow` goes first. `old` has no report (an older client, a failed push): its push's time."""
    last = {
        "fast.test": (90.0, ok(5.0)),
        "slow.test": (50.0, ok(48.0)),
        "old.test": (10.0, None),
        "failed.test": (30.0, {"status": "failed", "duration_s": 2.0}),
    }
    seconds = order_seconds(last)
    assert seconds == {"fast.test": 5.0, "slow.test": 48.0, "old.test": 10.0, "failed.test": 30.0}
    inv = fleet("fast.test", "slow.test", "old.test", "failed.test", "new.test")
    names = [m.name for m in plan(inv, last_duration=seconds)]
    assert names == ["slow.test", "failed.test", "old.test", "fast.test", "new.test"]


def test_a_report_cannot_claim_more_than_the_push_took() -> None:
    """A hostile or confused client's figure is bounded by what syncd measured itself."""
    assert own_sync_seconds(20.0, ok(1e300)) == 20.0
    assert own_sync_seconds(20.0, ok(10**400)) is None  # past any float: no figure
    assert order_seconds({"m": (20.0, ok(10**400))}) == {"m": 20.0}
    assert own_sync_seconds(None, ok(7)) == 7.0  # no push time recorded: the report's
    assert order_seconds({"m": (20.0, ok(1e300))}) == {"m": 20.0}


def test_reports_without_a_usable_figure_fall_back_to_the_push() -> None:
    bad: list[object] = [
        None,
        "ok",
        [],
        {"status": "ok"},
        ok(None),
        ok(True),
        ok("48"),
        ok(-1.0),
        ok(math.nan),
        ok(math.inf),
        ok({"s": 1}),
        {"status": "queued", "duration_s": 1.0},
        {"status": "ok\u202e", "duration_s": 1.0},
    ]
    for report in bad:
        assert own_sync_seconds(30.0, report) is None, report
        assert order_seconds({"m": (30.0, report)}) == {"m": 30.0}, report
    assert order_seconds({"m": (None, None)}) == {}


reports = st.one_of(
    st.none(),
    st.builds(ok, st.one_of(st.floats(), st.integers(), st.booleans(), st.text(), st.none())),
    st.dictionaries(st.text(max_size=12), st.one_of(st.floats(), st.text(), st.none())),
)
push = st.one_of(st.none(), st.floats(min_value=0, max_value=1e6))


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.tuples(push, reports), max_size=20))
def test_order_seconds_properties(last: dict[str, tuple[float | None, object]]) -> None:
    seconds = order_seconds(last)
    for mirror, (push_s, report) in last.items():
        own = own_sync_seconds(push_s, report)
        if own is None:  # today's order for that mirror
            assert seconds.get(mirror) == push_s
            continue
        assert seconds[mirror] == own
        assert 0 <= own < math.inf
        if push_s is not None:
            assert own <= push_s


def test_the_store_hands_over_each_mirrors_last_push_and_keeps_its_meaning() -> None:
    store = PublishStore(open_db(":memory:"))
    for run, at in (("R1", 1.0), ("R2", 2.0)):
        store.create_run(
            run, at, expected={"daily": 5}, request="", inventory=None, mirrors=["a", "b", "c"]
        )
    store.finish_target("R1", "a", 3.0, outcome="ok", error=None, report=ok(40.0), duration_s=41.0)
    store.finish_target("R2", "a", 4.0, outcome="ok", error=None, report=ok(5.0), duration_s=90.0)
    store.finish_target("R1", "b", 3.0, outcome="ok", error=None, report=ok(48.0), duration_s=50.0)
    store.finish_target("R2", "c", 4.0, outcome="failed", error="x", report=None, duration_s=12.0)
    last = store.last_pushes()
    assert last == {"a": (90.0, ok(5.0)), "b": (50.0, ok(48.0)), "c": (12.0, None)}
    names = [m.name for m in plan(fleet("a", "b", "c"), last_duration=order_seconds(last))]
    assert names == ["b", "c", "a"]
    # what `syncd status` and the DNS gate read: the whole push, as before
    assert store.last_durations() == {"a": 90.0, "b": 50.0, "c": 12.0}
    assert {s.mirror: s.duration_s for s in store.mirror_states()} == last_durations_of(last)


def last_durations_of(last: dict[str, tuple[float | None, object]]) -> dict[str, float | None]:
    return {m: push_s for m, (push_s, _) in last.items()}
