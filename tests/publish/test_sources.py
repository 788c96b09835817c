"""Source-aware scheduling: the pure scheduler's properties (hypothesis), and the publisher
keeping each source's capacity and moving mirrors off a failing source (trio's mock clock, a
scripted transport per source instead of ssh)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.harness.documents import report
from syncd.errors import ConfigError
from syncd.inventory.model import Mirror
from syncd.publish.config import Policy
from syncd.publish.fanout import Publisher
from syncd.publish.outcome import PushOutcome
from syncd.publish.sources import (
    FAILOVER,
    LEARNED,
    TIER,
    WEIGHT,
    Decision,
    SourceBoard,
    SourceSpec,
    assign,
    measured_rates,
    plan_tiers,
    quotas,
)
from syncd.publish.ssh import Reply
from syncd.publish.store import PublishStore
from syncd.settings import parse_config
from syncd.sqlite import open_db
from tests.publish.test_retries import EXPECTED, KEY, InlineRecord

R1, R2 = "rsync1.clamav.net", "rsync2.clamav.net"

names = st.lists(st.text("abcdefghij0123456789", min_size=1, max_size=6), unique=True, max_size=60)
specs = st.lists(
    st.builds(
        SourceSpec,
        name=st.sampled_from([R1, R2, "rsync3.clamav.net"]),
        weight=st.integers(1, 20),
        max_transfers=st.integers(1, 20),
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda s: s.name,
)


@given(names, specs)
def test_every_mirror_gets_one_source_split_by_weight_within_rounding(
    mirrors: list[str], sources: list[SourceSpec]
) -> None:
    got = assign(mirrors, sources)
    assert set(got) == set(mirrors)
    assert {d.source for d in got.values()} <= {s.name for s in sources}
    total = sum(s.weight for s in sources)
    for s in sources:
        count = sum(1 for d in got.values() if d.source == s.name)
        assert abs(count - len(mirrors) * s.weight / total) < 1
    assert all(d.basis == WEIGHT and d.reason.startswith(WEIGHT) for d in got.values())


@given(names, specs)
def test_every_prefix_of_the_plan_is_split_by_weight(
    mirrors: list[str], sources: list[SourceSpec]
) -> None:
    """The slowest mirrors (first in the plan) are spread too, not all on one source."""
    got = assign(mirrors, sources)
    total = sum(s.weight for s in sources)
    for k in range(1, len(mirrors) + 1):
        for s in sources:
            count = sum(1 for m in mirrors[:k] if got[m].source == s.name)
            assert abs(count - k * s.weight / total) < len(sources)


@given(names, specs, st.integers(0, 5))
def test_the_same_inputs_give_the_same_decisions(
    mirrors: list[str], sources: list[SourceSpec], learn_after: int
) -> None:
    rates = {s.name: [1e6 * (i + 1)] * 5 for i, s in enumerate(sources)}
    assert assign(mirrors, sources, rates, learn_after) == assign(
        list(mirrors), list(sources), dict(rates), learn_after
    )


@given(st.integers(0, 500), st.dictionaries(st.text(min_size=1), st.floats(0.01, 1e9), min_size=1))
def test_quotas_add_up_and_stay_within_one_of_the_exact_share(
    count: int, share: dict[str, float]
) -> None:
    got = quotas(count, share)
    assert sum(got.values()) == count
    total = sum(share.values())
    assert all(abs(got[n] - count * w / total) < 1 for n, w in share.items())


def test_learned_rates_take_over_once_every_source_has_enough() -> None:
    sources = [SourceSpec(R1, 1, 10), SourceSpec(R2, 1, 10)]
    fast, slow = [3e6] * 4, [1e6] * 4
    mirrors = [f"m{i}" for i in range(8)]
    got = assign(mirrors, sources, {R1: fast, R2: slow}, learn_after=4)
    assert [d.source for d in got.values()].count(R1) == 6
    assert all(d.basis == LEARNED for d in got.values())
    assert "learned rate: 75% of mirrors to rsync1.clamav.net" in got["m0"].reason
    assert "3 MB/s x 10" in got["m0"].reason
    # one source short of data: the weights still decide
    fewer = assign(mirrors, sources, {R1: fast, R2: slow[:3]}, learn_after=4)
    assert [d.source for d in fewer.values()].count(R1) == 4
    assert all(d.basis == WEIGHT for d in fewer.values())


def _client_report(
    used: str, attempts: list[tuple[str, int, float]], **extra: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        report(
            source_used=used,
            attempts=[
                {"source": s, "exit_code": c, "duration_s": d, "error": None}
                for s, c, d in attempts
            ],
            **extra,
        )
    )
    return doc


def test_measured_rates_read_the_attempt_on_the_source_used() -> None:
    reports = [
        _client_report(R2, [(R1, 10, 0.1), (R2, 0, 2.0)], bytes_transferred=6000),
        _client_report(R1, [(R1, 0, 3.0)], bytes_transferred=6000),
        _client_report(R1, [(R1, 0, 0.0)]),  # no duration: not a measurement
        {"status": "failed", "source_used": R1},
        {"status": "ok", "source_used": R1, "bytes_transferred": True, "attempts": []},
        "not a report",  # type: ignore[list-item]
    ]
    assert measured_rates(reports) == {R2: [3000.0], R1: [2000.0]}


@given(st.sampled_from([R1, R2]), st.text("abc", min_size=1, max_size=4))
def test_failover_goes_to_the_other_source(failed: str, mirror: str) -> None:
    sources = [SourceSpec(R1), SourceSpec(R2)]
    other = R2 if failed == R1 else R1
    board = SourceBoard(sources)
    planned = Decision(failed, WEIGHT, "w")
    assert board.route(planned) == planned
    rep = _client_report(other, [(failed, 10, 0.1), (other, 0, 1.0)])
    board.observe("first", rep)
    moved = board.route(planned)
    assert moved.source == other and moved.basis == FAILOVER
    assert f"{failed} failed for first" in moved.reason
    again = board.retry_on(mirror, planned, {"attempts": [{"source": failed, "exit_code": 10}]})
    assert again.source == other and again.basis == FAILOVER
    # the source works again (a report shows it): mirrors planned for it go there again
    board.observe("later", _client_report(failed, [(failed, 0, 1.0)]))
    assert board.route(planned) == planned


def test_both_sources_failing_keeps_the_plan() -> None:
    board = SourceBoard([SourceSpec(R1), SourceSpec(R2)])
    board.observe(
        "x", {"attempts": [{"source": R1, "exit_code": 10}, {"source": R2, "exit_code": 5}]}
    )
    planned = Decision(R1, WEIGHT, "w")
    assert board.route(planned) == planned


def test_busy_lowers_capacity_and_is_no_failure_while_bad_data_is() -> None:
    board = SourceBoard([SourceSpec(R1, 1, 10), SourceSpec(R2, 1, 10)])
    busy = {"source": R1, "exit_code": 5, "error": "rsync_busy: @ERROR: max connections (3)"}
    fell_back = {"attempts": [busy, {"source": R2, "exit_code": 0, "error": None}]}
    board.observe("a", fell_back, {R1: 6, R2: 2})
    assert board.capacity == {R1: 3, R2: 10} and board.failing == {}
    assert board.route(Decision(R1, WEIGHT, "w")).source == R1  # still pushed there
    assert board.retry_on("a", Decision(R1, WEIGHT, "w"), fell_back).source == R1
    board.observe("b", fell_back, {R1: 1})
    assert board.capacity[R1] == 1  # never below one
    for _ in range(100):  # what it serves gives slots back, up to max_transfers
        board.observe("d", {"attempts": [{"source": R1, "exit_code": 0, "error": None}]})
    assert board.capacity[R1] == 10
    corrupt = {"source": R2, "exit_code": 0, "error": "corrupt_cvd: daily.cvd: MD5 mismatch"}
    board.observe("c", {"attempts": [corrupt]})
    assert board.failing == {R2: "failed for c in this run"}


def test_a_report_naming_unknown_sources_changes_nothing() -> None:
    """A mirror's report is untrusted: sources it names that syncd does not push to are not
    remembered (the board stays bounded by the configuration)."""
    board = SourceBoard([SourceSpec(R1), SourceSpec(R2)])
    names = [f"evil{i}.example" for i in range(200)] + ["../../etc", "a b;rm -rf /"]
    board.observe("x", {"attempts": [{"source": n, "exit_code": 10} for n in names]})
    assert board.failing == {}
    assert board.route(Decision(R1, WEIGHT, "w")) == Decision(R1, WEIGHT, "w")


@st.composite
def tiered(draw: st.DrawFn) -> tuple[list[str], list[SourceSpec], dict[str, list[str]]]:
    """A plan, some of whose mirrors are hubs, and which hubs each mirror lists."""
    mirrors = draw(names)
    chosen = draw(st.lists(st.sampled_from(mirrors), unique=True, max_size=4)) if mirrors else []
    hubs = [SourceSpec(h, draw(st.integers(1, 20)), draw(st.integers(1, 20))) for h in chosen]
    hub_names = [h.name for h in hubs] + ["not-planned"]
    eligible = {
        m: draw(st.lists(st.sampled_from(hub_names), unique=True, max_size=3)) for m in mirrors
    }
    return mirrors, hubs, eligible


@given(tiered(), specs)
def test_tiers_take_only_eligible_mirrors_and_no_more_than_each_hubs_quota(
    case: tuple[list[str], list[SourceSpec], dict[str, list[str]]], sources: list[SourceSpec]
) -> None:
    mirrors, hubs, eligible = case
    got = plan_tiers(mirrors, sources, hubs, eligible)
    first = assign(mirrors, sources)
    assert set(got) == set(mirrors)
    hub_names = {h.name for h in hubs}
    share = {s.name: float(s.weight) for s in [*sources, *hubs]}
    quota = quotas(len(mirrors), share) if hubs else {}
    for mirror, decision in got.items():
        if decision.basis != TIER:
            assert decision == first[mirror]  # not through a hub: as without tiers
            continue
        assert decision.source in eligible[mirror] and decision.source in hub_names
        assert mirror not in hub_names  # a hub is pushed from a source, never from a hub
        assert decision.key == first[mirror].source == decision.through
    for hub in hub_names:
        assert sum(d.source == hub for d in got.values()) <= quota[hub]
    if hubs:  # the sources' quota is the front of the plan: never through a hub
        planned_hubs = hub_names & set(mirrors)
        hold = max(0, sum(quota[s.name] for s in sources) - len(planned_hubs))
        front = [m for m in mirrors if m not in planned_hubs][:hold]
        assert all(got[m].basis != TIER for m in front)
    assert plan_tiers(mirrors, sources, hubs, eligible) == got  # deterministic
    assert plan_tiers(mirrors, sources, [], eligible) == first


def test_hubs_share_the_mirrors_with_the_sources_by_weight() -> None:
    mirrors = [f"m{i:02}" for i in range(12)]
    hubs = [SourceSpec("m00", 2, 10), SourceSpec("m01", 2, 10)]
    eligible = {m: ["m00", "m01"] for m in mirrors}
    got = plan_tiers(mirrors, [SourceSpec(R1), SourceSpec(R2)], hubs, eligible)
    counts = {n: sum(d.source == n for d in got.values()) for n in (R1, R2, "m00", "m01")}
    # weights 1:1:2:2 of 12 mirrors: 4 per hub, and the hubs themselves on rsync1/rsync2
    assert counts == {R1: 2, R2: 2, "m00": 4, "m01": 4}
    assert got["m00"].basis == got["m01"].basis == WEIGHT
    # the plan is slowest first: the hubs take the last ones, the first ones start at once
    assert got["m02"].basis == got["m03"].basis == WEIGHT
    tier = got["m11"]
    assert tier.basis == TIER and tier.key in (R1, R2)
    assert f"via hub {tier.source}" in tier.reason and f"fall back to {tier.key}" in tier.reason


def test_a_hub_with_room_left_does_not_take_the_slowest_mirrors() -> None:
    """Hubs fill unevenly: m00's wave is the fast end of the plan, m01's the slow front. The
    front (as many as the sources' quota holds besides the hubs: m02, m03) starts at once
    from its source even though m01 has room; found by the simulation (benchmarks/README.md:
    10 Mbit/s mirrors in the second wave ended the release at 1.9x its limit)."""
    mirrors = [f"m{i:02}" for i in range(12)]
    hubs = [SourceSpec("m00", 2, 10), SourceSpec("m01", 2, 10)]
    eligible = {m: ["m00"] for m in mirrors[6:]} | {m: ["m01"] for m in mirrors[2:6]}
    got = plan_tiers(mirrors, [SourceSpec(R1), SourceSpec(R2)], hubs, eligible)
    assert [got[m].basis for m in ("m02", "m03")] == [WEIGHT, WEIGHT]
    assert [got[m].source for m in ("m04", "m05")] == ["m01", "m01"]
    assert [got[m].source for m in ("m08", "m09", "m10", "m11")] == ["m00"] * 4
    assert [got[m].basis for m in ("m06", "m07")] == [WEIGHT, WEIGHT]  # m00 is full


def test_a_hub_that_is_gone_sends_its_mirrors_to_their_source() -> None:
    board = SourceBoard([SourceSpec(R1), SourceSpec(R2)], [SourceSpec("hub-a", 1, 5)])
    planned = Decision("hub-a", TIER, "t", R2)
    assert board.route(planned) == planned and board.capacity["hub-a"] == 5
    board.hub_gone("hub-a", "ended failed: rsync_failed")
    moved = board.route(planned)
    assert (moved.source, moved.basis, moved.key) == (R2, FAILOVER, None)
    assert "hub hub-a ended failed: rsync_failed, so rsync2" in moved.reason
    # its source failing too: the other source
    board.observe("x", _client_report(R1, [(R2, 10, 0.1), (R1, 0, 1.0)]))
    assert board.route(planned).source == R1


def test_a_mirror_its_hub_failed_is_retried_on_its_source() -> None:
    board = SourceBoard([SourceSpec(R1), SourceSpec(R2)], [SourceSpec("hub-a")])
    planned = Decision("hub-a", TIER, "t", R1)
    rep = {"attempts": [{"source": "hub-a", "exit_code": 0, "error": "pin_mismatch: daily"}]}
    again = board.retry_on("m", planned, rep)
    assert (again.source, again.basis) == (
        R1,
        FAILOVER,
    ) and "hub hub-a failed for m" in again.reason
    board.observe("m", rep)
    assert board.route(planned).source == R1  # a hub that handed over bad data is failing


def test_sources_table_is_read_and_bad_entries_are_named(tmp_path: Any) -> None:
    origin = str(tmp_path / "syncd.toml")
    cfg = parse_config(
        f'[[sources]]\nname = "{R1}"\nkey = "k1"\nweight = 2\nmax_transfers = 5\n'
        f'[[sources]]\nname = "{R2}"\nkey = "/abs/k2"\n',
        origin,
    )
    assert [s.spec() for s in cfg.sources] == [SourceSpec(R1, 2, 5), SourceSpec(R2, 1, 50)]
    assert cfg.sources[0].key == tmp_path / "k1" and str(cfg.sources[1].key) == "/abs/k2"
    assert parse_config("", origin).sources == []
    bad = [
        (f'[[sources]]\nname = "{R1}"\nkey = "k"\nweight = 0\n', "sources.0.weight"),
        ('[[sources]]\nname = "a b;rm -rf /"\nkey = "k"\n', "sources.0.name"),
        (f'[[sources]]\nname = "{R1}"\nkey = "k"\n' * 2, "listed twice"),
        (f'[[sources]]\nname = "{R1}"\n', "sources.0.key"),
    ]
    for text, named in bad:
        with pytest.raises(ConfigError, match=named) as err:
            parse_config(text, origin)
        assert "\n" not in str(err.value) and "docs/publishing.md" in str(err.value)


# the publisher, with a scripted transport per source
def _reply(doc: dict[str, Any], code: int = 0) -> Reply:
    return Reply(code, json.dumps(doc).encode(), b"")


@dataclass
class SourceScripted:
    """One source's transport: every sync takes `seconds`; `down` makes the client's attempt
    on this source fail (it falls back to `fallback`, or fails with exit 75 without one)."""

    name: str
    fallback: str | None = None
    down: bool = False
    limit: int = 0  # > 0: a daemon with this `max connections`, busy beyond it
    busy_answers: int = 0
    seconds: float = 1.0
    busy: int = 0
    max_busy: int = 0
    pushed: list[str] = field(default_factory=list)

    async def open(self, m: Mirror) -> Any:
        return m

    async def close(self, session: Any) -> None:
        pass

    async def run(self, session: Any, request: str) -> Reply:
        self.busy += 1
        self.max_busy = max(self.max_busy, self.busy)
        self.pushed.append(session.name)
        try:
            await trio.sleep(self.seconds)
        finally:
            self.busy -= 1
        if self.limit and self.busy > self.limit:
            self.busy_answers += 1
            busy = {"source": self.name, "exit_code": 5, "duration_s": 0.1}
            busy["error"] = "rsync_busy: @ERROR: max connections reached"
            doc = _client_report(self.fallback or "", [(self.fallback or "", 0, 1.0)])
            doc["attempts"].insert(0, busy)
            return _reply(doc)
        if not self.down:
            return _reply(_client_report(self.name, [(self.name, 0, self.seconds)]))
        if self.fallback is None:
            doc = _client_report(self.name, [(self.name, 10, 0.1)])
            return _reply(
                {**doc, "status": "failed", "error": {"kind": "rsync", "message": "x"}}, 75
            )
        return _reply(
            _client_report(self.fallback, [(self.name, 10, 0.1), (self.fallback, 0, 1.0)])
        )


@pytest.fixture
def store() -> Iterator[PublishStore]:
    conn = open_db(":memory:")
    yield PublishStore(conn)
    conn.close()


def _run(
    store: PublishStore,
    transports: dict[str, SourceScripted],
    sources: list[SourceSpec],
    count: int,
) -> tuple[Publisher, list[str]]:
    names = [f"m{i:02}" for i in range(count)]
    store.create_run("R", 0.0, expected=EXPECTED, request="sync", inventory=None, mirrors=names)
    p = Publisher(
        transports[sources[0].name],
        InlineRecord(store),
        "R",
        EXPECTED,
        Policy(backoff_initial=0.1, backoff_max=0.2),
        handle_signals=False,
        sources=sources,
        transports=dict(transports),
        planned=assign(names, sources),
    )
    return p, names


def _mirror(name: str) -> Mirror:
    return Mirror(name=name, host="127.0.0.1", country="PL", host_keys=[KEY])


@settings(max_examples=15, deadline=None)
@given(
    st.integers(1, 30), st.integers(1, 6), st.integers(1, 6), st.integers(1, 4), st.integers(1, 4)
)
def test_transfers_per_source_never_exceed_its_capacity(
    count: int, cap1: int, cap2: int, w1: int, w2: int
) -> None:
    sources = [SourceSpec(R1, w1, cap1), SourceSpec(R2, w2, cap2)]
    transports = {R1: SourceScripted(R1), R2: SourceScripted(R2)}
    conn = open_db(":memory:")
    try:
        p, names = _run(PublishStore(conn), transports, sources, count)
        results = trio.run(
            p.run, [_mirror(n) for n in names], clock=trio.testing.MockClock(autojump_threshold=0)
        )
    finally:
        conn.close()
    assert {r.outcome for r in results} == {PushOutcome.OK} and len(results) == count
    assert transports[R1].max_busy <= cap1 and transports[R2].max_busy <= cap2
    assert sorted(transports[R1].pushed + transports[R2].pushed) == names


@pytest.mark.trio
async def test_a_failing_source_hands_its_mirrors_to_the_other(
    autojump_clock: trio.testing.MockClock, store: PublishStore
) -> None:
    """rsync1 is down: the first mirror pushed to it falls back by itself (the client), the
    scheduler learns it from that report, and the rest of rsync1's share is pushed to rsync2."""
    sources = [SourceSpec(R1, 1, 1), SourceSpec(R2, 1, 4)]
    transports = {R1: SourceScripted(R1, fallback=R2, down=True), R2: SourceScripted(R2)}
    p, names = _run(store, transports, sources, 8)
    results = await p.run([_mirror(n) for n in names])
    assert {r.outcome for r in results} == {PushOutcome.OK}
    assert len(transports[R1].pushed) == 1  # only the one that showed it down
    assert {r.report["source_used"] for r in results if r.report} == {R2}
    rows = [a for n in names for a in store.attempts("R", n)]
    moved = [a for a in rows if a["source"] == R2 and a["source_reason"].startswith(FAILOVER)]
    assert len(moved) == 3
    assert all(f"{R1} failed for {transports[R1].pushed[0]}" in a["source_reason"] for a in moved)


@pytest.mark.trio
async def test_a_mirror_failing_on_its_source_is_retried_on_the_other(
    autojump_clock: trio.testing.MockClock, store: PublishStore
) -> None:
    """No fallback in the client (it fails, exit 75): syncd's retry goes to the other key."""
    sources = [SourceSpec(R1, 1, 5), SourceSpec(R2, 1, 5)]
    transports = {R1: SourceScripted(R1, down=True), R2: SourceScripted(R2)}
    p, names = _run(store, transports, sources, 2)
    results = await p.run([_mirror(n) for n in names])
    assert {r.outcome for r in results} == {PushOutcome.OK}
    (first,) = transports[R1].pushed
    rows = store.attempts("R", first)
    assert [(a["source"], a["verdict"]) for a in rows] == [(R1, "retry"), (R2, "ok")]
    assert rows[1]["source_reason"] == f"{FAILOVER}: {R1} failed for {first}, so {R2}"


@pytest.mark.trio
async def test_a_busy_source_gets_fewer_transfers_not_fewer_mirrors(
    autojump_clock: trio.testing.MockClock, store: PublishStore
) -> None:
    """rsync1 holds 2 connections, syncd was told 6: the busy answers (the client fell back
    by itself) lower rsync1's slots; mirrors planned for rsync1 are still pushed there, and
    none fails."""
    sources = [SourceSpec(R1, 1, 6), SourceSpec(R2, 1, 6)]
    transports = {R1: SourceScripted(R1, fallback=R2, limit=2), R2: SourceScripted(R2)}
    p, names = _run(store, transports, sources, 24)
    results = await p.run([_mirror(n) for n in names])
    assert {r.outcome for r in results} == {PushOutcome.OK} and len(results) == 24
    assert p._transfers[R1].total_tokens == p._board.capacity[R1] < 6
    assert p._board.capacity[R2] == 6
    # 6 busy answers when rsync1 keeps its 6 slots (its second round is refused alike)
    assert transports[R1].busy_answers <= 4
    assert p._board.failing == {}
    assert len(transports[R1].pushed) == 12  # its whole share, no failover for busy
