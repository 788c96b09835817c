"""Tiers: a second wave through hubs (mirrors that serve the release from their own rsync
daemon). The publisher, under trio's mock clock, with a scripted transport per pusher key that
answers as the mirror's client would: a push naming a hub (``source=``) pulls from it when the
hub serves the release, else falls back to the key's source."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
import trio.testing

from devtools.harness.documents import LAB_INVENTORY, report
from pushwire.request import parse_request
from syncd.inventory.model import Hub, InventoryError, Mirror, parse_inventory
from syncd.publish.config import Policy
from syncd.publish.fanout import Publisher
from syncd.publish.job import hubs_of
from syncd.publish.outcome import PushOutcome
from syncd.publish.sources import FAILOVER, TIER, SourceSpec, assign, plan_tiers
from syncd.publish.ssh import Reply
from syncd.publish.store import PublishStore
from syncd.sqlite import open_db
from tests.publish.test_retries import EXPECTED, KEY, InlineRecord

R1, R2 = "rsync1.clamav.net", "rsync2.clamav.net"
HUB = "m00"
PINS = {"daily": "a" * 32, "main": "b" * 32, "bytecode": "c" * 32}


def _doc(used: str, attempts: list[tuple[str, int]], **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        report(
            source_used=used,
            attempts=[
                {"source": s, "exit_code": c, "duration_s": 1.0, "error": None} for s, c in attempts
            ],
            bytes_transferred=1000,
            **extra,
        )
    )
    return doc


@dataclass
class Fleet:
    """What every mirror's client does, whichever key logged in: each sync takes a second;
    the hub mirror's own sync takes `hub_seconds` and fails when `hub_fails`."""

    hub_seconds: float = 1.0
    hub_fails: bool = False
    served_at: dict[str, float] = field(default_factory=dict)  # mirror -> when it ended ok
    pushes: list[tuple[str, str, str | None, float]] = field(default_factory=list)
    through_hub: int = 0
    most_through_hub: int = 0

    def key(self, name: str) -> Keyed:
        return Keyed(self, name)

    async def sync(self, key: str, mirror: str, request: str) -> Reply:
        req = parse_request(request)
        self.pushes.append((mirror, key, req.source, trio.current_time()))
        if mirror == HUB:
            await trio.sleep(self.hub_seconds)
            if self.hub_fails:  # its own fault (its disk), not its source's
                doc = _doc(key, [(key, 0)], status="failed")
                doc["error"] = {"kind": "disk_full", "message": "TO: No space left on device"}
                return Reply(1, json.dumps(doc).encode(), b"")
            self.served_at[mirror] = trio.current_time()
            return Reply(0, json.dumps(_doc(key, [(key, 0)])).encode(), b"")
        if req.source is None:
            await trio.sleep(1.0)
            return Reply(0, json.dumps(_doc(key, [(key, 0)])).encode(), b"")
        assert req.source == HUB and req.pins == PINS  # a hub push always pins the release
        self.through_hub += 1
        self.most_through_hub = max(self.most_through_hub, self.through_hub)
        try:
            await trio.sleep(1.0)
        finally:
            self.through_hub -= 1
        if HUB in self.served_at:
            return Reply(0, json.dumps(_doc(HUB, [(HUB, 0)])).encode(), b"")
        # the hub does not serve the release: the client falls back to the key's source
        return Reply(0, json.dumps(_doc(key, [(HUB, 10), (key, 0)])).encode(), b"")


@dataclass
class Keyed:
    fleet: Fleet
    name: str

    async def open(self, m: Mirror) -> Any:
        return m

    async def close(self, session: Any) -> None:
        pass

    async def run(self, session: Any, request: str) -> Reply:
        return await self.fleet.sync(self.name, session.name, request)


@pytest.fixture
def store() -> Iterator[PublishStore]:
    conn = open_db(":memory:")
    yield PublishStore(conn)
    conn.close()


def _publisher(
    store: PublishStore, fleet: Fleet, count: int, slots: int = 10, **policy: Any
) -> Publisher:
    names = [f"m{i:02}" for i in range(count)]
    store.create_run("R", 0.0, expected=EXPECTED, request="sync", inventory=None, mirrors=names)
    sources = [SourceSpec(R1, 1, slots), SourceSpec(R2, 1, slots)]
    hubs = [SourceSpec(HUB, 2, 3)]
    planned = plan_tiers(names, sources, hubs, {n: [HUB] for n in names})
    return Publisher(
        fleet.key(R1),
        InlineRecord(store),
        "R",
        EXPECTED,
        Policy(backoff_initial=0.1, backoff_max=0.2, max_attempts=2, **policy),
        handle_signals=False,
        sources=sources,
        transports={R1: fleet.key(R1), R2: fleet.key(R2)},
        planned=planned,
        hubs=hubs,
        pins=PINS,
    )


def _mirrors(count: int) -> list[Mirror]:
    # the hub last in the plan: the publisher pushes it first all the same
    return [
        Mirror(name=f"m{i:02}", host="127.0.0.1", country="PL", host_keys=[KEY])
        for i in reversed(range(count))
    ]


@pytest.mark.trio
async def test_the_second_wave_waits_for_its_hub_and_pulls_from_it(
    autojump_clock: trio.testing.MockClock, store: PublishStore
) -> None:
    fleet = Fleet(hub_seconds=3.0)
    p = _publisher(store, fleet, 12, slots=1)
    results = await p.run(_mirrors(12))
    assert {r.outcome for r in results} == {PushOutcome.OK} and len(results) == 12
    # one slot per source, 6 mirrors on them: the hub took its source's first slot
    assert fleet.served_at[HUB] == 3.0
    via = [(m, key, t) for m, key, source, t in fleet.pushes if source == HUB]
    assert len(via) == 6  # weights 1:1:2 of 12 mirrors: the hub's quota
    assert all(t >= fleet.served_at[HUB] for _, _, t in via)  # only once the hub serves
    assert fleet.most_through_hub <= 3  # its max_transfers
    for mirror, key, _ in via:
        (row,) = store.attempts("R", mirror)
        assert row["source"] == HUB and row["source_reason"].startswith(TIER)
        assert f"fall back to {key}" in row["source_reason"]
        result = next(r for r in results if r.name == mirror)
        assert result.report and result.report["source_used"] == HUB


@pytest.mark.trio
async def test_a_hub_that_fails_sends_its_wave_to_their_sources(
    autojump_clock: trio.testing.MockClock, store: PublishStore
) -> None:
    fleet = Fleet(hub_fails=True)
    p = _publisher(store, fleet, 12)
    results = await p.run(_mirrors(12))
    by_name = {r.name: r for r in results}
    assert by_name[HUB].outcome is PushOutcome.FAILED
    assert all(r.outcome is PushOutcome.OK for n, r in by_name.items() if n != HUB)
    assert not [m for m, _, source, _ in fleet.pushes if source is not None]  # none via the hub
    moved = [
        a
        for n in by_name
        for a in store.attempts("R", n)
        if a["source_reason"] and a["source_reason"].startswith(FAILOVER)
    ]
    assert len(moved) == 6
    assert all(f"hub {HUB} ended failed" in a["source_reason"] for a in moved)
    assert {a["source"] for a in moved} <= {R1, R2}


@pytest.mark.trio
async def test_a_hub_slower_than_hub_wait_loses_its_wave_to_their_sources(
    autojump_clock: trio.testing.MockClock, store: PublishStore
) -> None:
    fleet = Fleet(hub_seconds=50.0)
    p = _publisher(store, fleet, 12, hub_wait=5.0)
    results = await p.run(_mirrors(12))
    assert {r.outcome for r in results} == {PushOutcome.OK}
    late = [(m, t) for m, _, source, t in fleet.pushes if m != HUB and t >= 5.0]
    assert len(late) == 6 and all(t < 6.0 for _, t in late)  # at hub_wait, not at 50 s
    for mirror, _ in late:
        (row,) = store.attempts("R", mirror)
        assert row["source"] in (R1, R2)
        assert row["source_reason"] == (
            f"{FAILOVER}: hub {HUB} did not serve the release within 5 s (hub_wait), "
            f"so {row['source']} (its source)"
        )


class _Reverse(random.Random):
    """trio's scheduler coin, fixed: every batch of runnable tasks reversed (or never), as
    trio does to half of them outside its test mode."""

    def __init__(self, reverse: bool) -> None:
        super().__init__(0)
        self.reverse = reverse

    def random(self) -> float:
        return 0.0 if self.reverse else 0.9


@pytest.mark.parametrize("reverse", [True, False])
@pytest.mark.trio
async def test_the_slots_go_in_the_plans_order_whatever_order_trio_runs_new_tasks_in(
    autojump_clock: trio.testing.MockClock,
    store: PublishStore,
    monkeypatch: pytest.MonkeyPatch,
    reverse: bool,
) -> None:
    """The plan is slowest first: each source's one slot serves its mirrors in that order,
    also when trio runs the batch of new tasks backwards."""
    monkeypatch.setattr(trio._core._run, "_r", _Reverse(reverse))
    names = [f"a{i:02}" for i in range(10)]
    store.create_run("R", 0.0, expected=EXPECTED, request="sync", inventory=None, mirrors=names)
    sources = [SourceSpec(R1, 1, 1), SourceSpec(R2, 1, 1)]
    planned = assign(names, sources)
    fleet = Fleet()
    p = Publisher(
        fleet.key(R1),
        InlineRecord(store),
        "R",
        EXPECTED,
        Policy(),
        handle_signals=False,
        sources=sources,
        transports={R1: fleet.key(R1), R2: fleet.key(R2)},
        planned=planned,
    )
    mirrors = [Mirror(name=n, host="127.0.0.1", country="PL", host_keys=[KEY]) for n in names]
    results = await p.run(mirrors)
    assert {r.outcome for r in results} == {PushOutcome.OK}
    for source in (R1, R2):
        pushed = [m for m, key, _, _ in fleet.pushes if key == source]
        assert pushed == [n for n in names if planned[n].source == source]


@pytest.mark.parametrize("reverse", [True, False])
@pytest.mark.trio
async def test_without_sources_the_sessions_go_in_the_push_order_whatever_order_trio_runs(
    autojump_clock: trio.testing.MockClock,
    store: PublishStore,
    monkeypatch: pytest.MonkeyPatch,
    reverse: bool,
) -> None:
    """No [[sources]]: a fleet larger than the session bound is served in the push order
    (slowest first) too, whichever way trio runs the batch of new tasks. Proven able to fail:
    with the sessions and handshakes first-come CapacityLimiters, both cases failed."""
    monkeypatch.setattr(trio._core._run, "_r", _Reverse(reverse))
    names = [f"a{i:02}" for i in range(10)]
    store.create_run("R", 0.0, expected=EXPECTED, request="sync", inventory=None, mirrors=names)
    fleet = Fleet()
    p = Publisher(
        fleet.key(R1),
        InlineRecord(store),
        "R",
        EXPECTED,
        Policy(session_concurrency=1, handshake_concurrency=1),
        handle_signals=False,
    )
    mirrors = [Mirror(name=n, host="127.0.0.1", country="PL", host_keys=[KEY]) for n in names]
    results = await p.run(mirrors)
    assert {r.outcome for r in results} == {PushOutcome.OK}
    assert [m for m, _, _, _ in fleet.pushes] == names


# the inventory's hubs
def _inventory(extra_a: str = "", extra_b: str = "") -> str:
    block = 'name = "{n}"\nhost = "127.0.0.1"\ncountry = "PL"\nhost_keys = ["' + KEY + '"]\n'
    return (
        LAB_INVENTORY
        + "[[mirrors]]\n"
        + block.format(n="hub.example.de")
        + extra_a
        + "\n[[mirrors]]\n"
        + block.format(n="b.example.de")
        + extra_b
    )


def test_the_inventory_names_hubs_and_who_may_pull_from_them() -> None:
    inv = parse_inventory(
        _inventory("hub = { max_transfers = 7, weight = 3 }\n", 'hubs = ["hub.example.de"]\n')
    )
    hub, other = inv.mirrors
    assert hub.hub is not None and (hub.hub.max_transfers, hub.hub.weight) == (7, 3)
    assert other.hub is None and other.hubs == ["hub.example.de"]
    assert hubs_of(inv.mirrors) == [SourceSpec("hub.example.de", 3, 7)]
    assert parse_inventory(_inventory("hub = {}\n")).mirrors[0].hub == Hub()


@pytest.mark.parametrize(
    ("extra_a", "extra_b", "message"),
    [
        ("", 'hubs = ["hub.example.de"]\n', "'hub.example.de' is not a hub of this inventory"),
        ("hub = {}\n", 'hubs = ["b.example.de"]\n', "'b.example.de' is itself"),
        ("hub = {}\n", 'hubs = ["hub.example.de", "hub.example.de"]\n', "listed twice"),
        ("hub = {}\n", 'hubs = ["x;rm -rf /"]\n', "is not a mirror's name"),
        ("hub = { max_transfers = 0 }\n", "", "field 'hub.max_transfers': Input should be"),
        ("hub = { weight = 100000 }\n", "", "field 'hub.weight': Input should be"),
        ("hub = { weight = 2.5 }\n", "", "field 'hub.weight'"),
        ("hub = { max_transfers = 5, bandwidth = 1 }\n", "", "unknown key 'hub.bandwidth'"),
    ],
)
def test_bad_hub_entries_are_named_with_the_fix(extra_a: str, extra_b: str, message: str) -> None:
    with pytest.raises(InventoryError, match="inventory.toml: mirror .*" + re.escape(message)):
        parse_inventory(_inventory(extra_a, extra_b))


def test_a_hubs_name_fits_a_push() -> None:
    long = "h" * 60 + ".example.de"
    text = _inventory("hub = {}\n").replace("hub.example.de", long)
    with pytest.raises(InventoryError, match="at most 64 characters"):
        parse_inventory(text)
