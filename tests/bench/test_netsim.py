"""The network simulation's own invariants (benchmarks.netsim: max-min fair flows, every unit
delivered, no link over capacity) and that the publish simulation (benchmarks.simpublish) runs
syncd's own scheduler: breaking syncd's policy changes the simulated outcome. All in simulated
time (trio's MockClock), seeded, no wall clock."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import netsim
from benchmarks.netsim import Flow, Link, LinkDown, Network, check, max_min
from benchmarks.simpublish import Scenario, served_scenario, simulate, topology_limit
from syncd.publish import sources

MB = 1_000_000


def _flows(caps: list[float], crossings: list[list[int]]) -> tuple[list[Link], list[Flow]]:
    links = [Link(f"l{i}", c) for i, c in enumerate(caps)]
    flows = [Flow(tuple(links[i] for i in sorted(set(c))), 1.0, 1.0, 0.0) for c in crossings]
    return links, flows


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0.1, 1000), min_size=1, max_size=8).flatmap(
        lambda caps: st.tuples(
            st.just(caps),
            st.lists(
                st.lists(st.integers(0, len(caps) - 1), min_size=1, max_size=3),
                min_size=1,
                max_size=30,
            ),
        )
    )
)
def test_max_min_is_feasible_and_every_flow_has_a_bottleneck(
    case: tuple[list[float], list[list[int]]],
) -> None:
    """Max-min fairness, by its definition: no link over capacity, and every flow crosses a
    saturated link on which no flow has a larger rate (so no flow can grow without taking
    from one that is no larger)."""
    links, flows = _flows(*case)
    rates = max_min(flows)
    assert set(rates) == set(flows)
    assert check(flows, rates) == []
    load = {link: sum(rates[f] for f in flows if link in f.links) for link in links}
    for f in flows:
        assert any(
            load[link] >= link.capacity * (1 - 1e-9)
            and all(rates[g] <= rates[f] * (1 + 1e-9) for g in flows if link in g.links)
            for link in f.links
        ), (f, rates[f])


def test_max_min_by_hand() -> None:
    """A source of 10 shared by downlinks of 1, 5 and 100: 1, 4.5, 4.5 (the small one is its
    own bottleneck, the others split what is left)."""
    src = Link("src", 10)
    flows = [Flow((src, Link(f"d{c}", c)), 1, 1, 0) for c in (1, 5, 100)]
    rates = max_min(flows)
    assert [round(rates[f], 9) for f in flows] == [1, 4.5, 4.5]


def test_a_planted_violation_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """`check` reports a link over capacity; a network whose allocation is broken stops in
    strict mode (so the invariant is watched, not assumed)."""
    _, flows = _flows([10.0], [[0], [0]])
    assert check(flows, {flows[0]: 6.0, flows[1]: 5.0}) == ["l0: 11 over its capacity 10"]
    assert check(flows, {flows[0]: -1.0, flows[1]: 5.0})  # a negative rate too

    def broken(fs: Any) -> dict[Flow, float]:
        return {f: 2 * f.links[0].capacity for f in fs}

    async def main() -> None:
        net = Network(strict=True)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(net.run)
            await net.transfer([Link("x", 1.0)], 1.0)

    monkeypatch.setattr(netsim, "max_min", broken)
    with pytest.raises(BaseExceptionGroup) as caught:
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert "x: 2 over its capacity 1" in repr(caught.value.exceptions)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 20),
            st.floats(1, 5000),
            st.lists(st.integers(0, 4), min_size=1, max_size=3),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_every_unit_is_delivered_and_no_link_is_over_capacity(
    transfers: list[tuple[float, float, list[int]]],
) -> None:
    """Transfers starting at random times over random links: each returns, the network
    delivered the sum of their sizes, each link carried exactly what crossed it, no transfer
    was faster than its slowest link alone allows, and every allocation made on the way was
    within capacity (strict mode)."""
    links = [Link(f"l{i}", c) for i, c in enumerate((10.0, 25.0, 100.0, 3.0, 50.0))]
    took: dict[int, float] = {}

    async def one(k: int, start: float, size: float, crossing: list[int]) -> None:
        await trio.sleep(start)
        took[k] = await net.transfer([links[i] for i in sorted(set(crossing))], size)

    net = Network(strict=True)

    async def main() -> None:
        async with trio.open_nursery() as outer:
            outer.start_soon(net.run)
            async with trio.open_nursery() as nursery:
                for k, t in enumerate(transfers):
                    nursery.start_soon(one, k, *t)
            outer.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert len(took) == len(transfers)
    assert net.delivered == pytest.approx(sum(size for _, size, _ in transfers))
    for i, link in enumerate(links):
        crossing = sum(size for _, size, c in transfers if i in c)
        assert link.carried == pytest.approx(crossing, rel=1e-6, abs=1e-6)
    for k, (_, size, crossing) in enumerate(transfers):
        alone = size / min(links[i].capacity for i in crossing)
        assert took[k] >= alone * (1 - 1e-9)
    assert not net.flows


def test_two_flows_share_then_one_runs_alone() -> None:
    """On a link of 10/s: a transfer of 10 alone takes 1 s; a second of 30 started with it
    shares 5/s each until the first ends (2 s), then runs alone: 20 left at 10/s, 4 s in all."""
    link = Link("l", 10.0)
    took: dict[str, float] = {}

    async def one(name: str, size: float) -> None:
        took[name] = await net.transfer([link], size)

    net = Network(strict=True)

    async def main() -> None:
        async with trio.open_nursery() as outer:
            outer.start_soon(net.run)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(one, "small", 10.0)
                nursery.start_soon(one, "large", 30.0)
            outer.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert took == {"small": pytest.approx(2.0), "large": pytest.approx(4.0)}


def test_a_link_that_fails_cuts_its_transfers() -> None:
    link, other = Link("hub", 10.0), Link("elsewhere", 10.0)
    seen: list[str] = []

    async def main() -> None:
        net = Network(strict=True)
        async with trio.open_nursery() as outer:
            outer.start_soon(net.run)

            async def cut() -> None:
                await trio.sleep(0.5)
                net.fail(link)

            outer.start_soon(cut)
            try:
                await net.transfer([link], 100.0)
            except LinkDown as err:
                seen.append(str(err))
            assert await net.transfer([other], 10.0) == pytest.approx(1.0)
            with pytest.raises(LinkDown):
                await net.transfer([link], 1.0)  # refused at once: it is down
            outer.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert seen == ["hub went down"]
    assert link.carried == pytest.approx(5.0)


SMALL = Scenario(
    30, "balanced", release_bytes=6 * MB, source_Bps=12.5 * MB, max_transfers=10, seed=3
)


def _key(r: Any) -> tuple[Any, ...]:
    return (r.t50_s, r.t95_s, r.t100_s, r.bytes_by_source, r.attempts, r.busy_answers)


def test_the_simulation_is_deterministic_with_a_seed() -> None:
    a, b = simulate(SMALL), simulate(SMALL)
    assert _key(a[0]) == _key(b[0])
    assert a[0].failures == 0 and a[0].served == 30
    other = simulate(dataclasses.replace(SMALL, seed=4))
    assert _key(other[0]) != _key(a[0])


def test_the_split_is_syncds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bytes per source follow syncd's shares (`syncd.publish.sources.shares`): weights
    1:1 split the fleet in half; a broken share function (every mirror to rsync1) changes
    the simulated outcome."""
    (fair,) = simulate(SMALL)
    assert fair.bytes_by_source["rsync1.clamav.net"] == fair.bytes_by_source["rsync2.clamav.net"]

    def lopsided(specs: Any, rates: Any, learn_after: int) -> tuple[dict[str, float], str]:
        return {s.name: (1.0 if s.name == "rsync1.clamav.net" else 1e-9) for s in specs}, "weight"

    monkeypatch.setattr(sources, "shares", lopsided)
    (broken,) = simulate(SMALL)
    assert broken.bytes_by_source["rsync2.clamav.net"] == 0
    assert broken.t100_s is not None and fair.t100_s is not None
    assert broken.t100_s > 1.5 * fair.t100_s  # one source's egress instead of two


def test_busy_pacing_is_syncds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Daemons at ``max connections = 4``: syncd's board halves a busy source's slots
    (`SourceBoard.observe`), so the clients meet few busy answers; with the board's learning
    removed the fan-out keeps sending 10 at once and meets many more."""
    busy = dataclasses.replace(SMALL, max_connections=4)
    (paced,) = simulate(busy)
    monkeypatch.setattr(sources.SourceBoard, "observe", lambda *a, **k: None)
    (unpaced,) = simulate(busy)
    assert paced.failures == unpaced.failures == 0  # busy is never a failure
    assert unpaced.busy_answers > 1.5 * paced.busy_answers > 0
    assert unpaced.attempts > paced.attempts


def test_a_failing_hub_hands_its_wave_to_the_sources() -> None:
    """Tiered, one hub's daemon dying mid-wave: its transfers are cut, the clients fall back
    to their source, syncd's board moves the rest of its wave off it; every mirror serves."""
    tiered = dataclasses.replace(SMALL, contender="tiered", hubs=3, hub_transfers=5)
    (healthy,) = simulate(tiered)
    (failing,) = simulate(dataclasses.replace(tiered, hub_fails_at=1.0))
    assert healthy.failures == failing.failures == 0
    assert healthy.served == failing.served == 30
    assert failing.bytes_by_source["hubs"] < healthy.bytes_by_source["hubs"]


def test_the_served_profile_is_the_benchmarks() -> None:
    """The validation's fleet is the served benchmark's: its downlink draw, its sizes (304,104
    bytes forwarded per mirror, as measured) and one hub per 50 mirrors."""
    (r,) = simulate(served_scenario(50, "tiered"))
    assert r.scenario["hubs"] == 1
    total = sum(r.bytes_by_source.values())
    assert total == pytest.approx(50 * 304_104 / MB, rel=1e-3)


def test_the_tree_limit_lies_between_the_sources_and_everything_at_once() -> None:
    caps = [12.5 * MB] * 100
    size = 60 * MB
    balanced = topology_limit(Scenario(100, "balanced"), caps, size)[0]
    tiered = topology_limit(Scenario(100, "tiered", hubs=10), caps, size)[0]
    no_wait = 100 * size / (2 * 125 * MB + 10 * 125 * MB)  # hubs serving from time 0
    assert no_wait < tiered < balanced
    assert balanced == pytest.approx(100 * size / (250 * MB))
