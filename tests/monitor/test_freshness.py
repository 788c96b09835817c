"""The freshness policy, table-tested: every state, every way in and out, and hysteresis."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.monitor.freshness import (
    Check,
    Record,
    Release,
    State,
    Thresholds,
    behind,
    figures,
    keeps_rotation,
    step,
)

H = 3600.0
NOW = 1_800_000_000.0
RELEASE = Release({"daily": 100, "main": 62, "bytecode": 335}, released_at=NOW - 10 * H)
CURRENT = dict(RELEASE.versions)
TH = Thresholds()


def good(at: float, age_h: float = 0.5, **versions: int) -> Check:
    return Check(at=at, ok=True, timestamp=at - age_h * H, versions={**CURRENT, **versions})


def bad(at: float) -> Check:
    return Check(at=at, ok=False, error="connection refused")


@pytest.mark.parametrize(
    ("start", "check", "expected", "reason_part"),
    [
        (State.FRESH, good(NOW), State.FRESH, None),
        (State.FRESH, good(NOW, age_h=25), State.OLD, "25.0 h old"),
        (State.FRESH, good(NOW, age_h=49), State.REMOVED, "49.0 h old"),
        (State.OLD, good(NOW, age_h=49), State.REMOVED, "limit 48.0 h"),
        (State.LAGGING, good(NOW, age_h=30), State.OLD, "30.0 h old"),
        (State.FRESH, bad(NOW), State.FRESH, None),  # one failure is not yet unreachable
        (State.REMOVED, bad(NOW), State.REMOVED, None),
    ],
)
def test_single_step(start: State, check: Check, expected: State, reason_part: str | None) -> None:
    rec, transition = step(Record(start, NOW - H), check, RELEASE, TH)
    assert rec.state is expected
    if reason_part is None:
        assert transition is None
    else:
        assert transition is not None
        assert (transition.old, transition.new) == (start, expected)
        assert reason_part in transition.reason


START = Record(State.FRESH, NOW - 100 * H)


def run(checks: list[Check], rec: Record = START) -> tuple[Record, list[str]]:
    labels = []
    for c in checks:
        rec, t = step(rec, c, RELEASE, TH)
        if t:
            labels.append(t.label)
    return rec, labels


def test_unreachable_after_three_failures_and_recovery_needs_two_good_checks() -> None:
    rec, labels = run([bad(NOW + i * H) for i in range(3)])
    assert rec.state is State.UNREACHABLE
    assert labels == ["unreachable"]
    rec, labels = run([good(NOW + 4 * H)], rec)
    assert rec.state is State.UNREACHABLE and labels == []
    rec, labels = run([good(NOW + 5 * H)], rec)
    assert rec.state is State.FRESH and labels == ["recovered"]


def test_flapping_mirror_is_not_announced_every_hour() -> None:
    # good, bad, good, bad... never three failures in a row, never two good after a failure
    rec, labels = run([good(NOW + i * H) if i % 2 else bad(NOW + i * H) for i in range(24)])
    assert labels == []
    assert rec.state is State.FRESH


def test_lagging_only_after_the_grace_period() -> None:
    t0 = RELEASE.released_at + 1 * H
    checks = [good(t0 + i * H, daily=99) for i in range(4)]
    rec, labels = run(checks)
    assert labels == ["lagging"]  # at t0 + 2 h: 3 h after the release
    assert rec.state is State.LAGGING
    assert behind({"daily": 99, "main": 62}, RELEASE) == ["bytecode", "daily"]


def test_lagging_reason_names_the_versions() -> None:
    _, t = step(START, good(RELEASE.released_at + 4 * H, daily=98), RELEASE, TH)
    assert t is not None
    assert t.reason.startswith("serves daily 98 instead of daily 100")


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (good(NOW), State.FRESH),
        (good(NOW, age_h=25), State.OLD),
        (good(NOW, age_h=49), State.REMOVED),
        (good(NOW, daily=99), State.LAGGING),
    ],
)
def test_first_check_sets_the_state_at_once_and_is_no_change(check: Check, expected: State) -> None:
    assert Record().state is State.UNKNOWN
    rec, t = step(Record(), check, RELEASE, TH)
    assert rec.state is expected and rec.since == check.at
    assert t is not None and t.first and t.old is State.UNKNOWN
    assert not t.recovered and t.label == expected.value
    assert t.reason.startswith("first check: ")


def test_unknown_mirror_that_never_answers_becomes_unreachable_not_fresh() -> None:
    rec, labels = run([bad(NOW + i * H) for i in range(3)], Record())
    assert rec.state is State.UNREACHABLE and labels == ["unreachable"]
    assert Record().state is State.UNKNOWN  # unchecked: not judged fresh...
    assert keeps_rotation(State.UNKNOWN)  # ...but no veto: the publish proof decides alone
    assert not keeps_rotation(rec.state)


def test_old_mirror_comes_back_through_hysteresis() -> None:
    rec = Record(State.OLD, NOW - 30 * H)
    rec, labels = run([good(NOW), good(NOW + H)], rec)
    assert labels == ["recovered"]


def test_improvement_streak_resets_on_a_relapse() -> None:
    rec = Record(State.REMOVED, NOW - 60 * H)
    rec, labels = run([good(NOW), good(NOW + H, age_h=50), good(NOW + 2 * H)], rec)
    assert rec.state is State.REMOVED and labels == []


@given(
    st.lists(
        st.tuples(st.booleans(), st.floats(0, 80), st.integers(95, 101)), min_size=1, max_size=40
    )
)
def test_any_history_ends_in_a_valid_state(events: list[tuple[bool, float, int]]) -> None:
    rec = Record()
    for i, (ok, age, daily) in enumerate(events):
        check = good(NOW + i * H, age_h=age, daily=daily) if ok else bad(NOW + i * H)
        new, t = step(rec, check, RELEASE, TH)
        if t is not None:
            assert t.old is rec.state and t.new is new.state and t.old is not t.new
        else:
            assert new.state is rec.state
        rec = new
    assert rec.state in State


def test_figures_completion_delay_and_score() -> None:
    checks = [good(NOW + i * H, age_h=1) for i in range(3)] + [bad(NOW + 3 * H)]
    f = figures(checks, since=NOW)
    assert f.checks == 4
    assert f.completion == pytest.approx(0.75)
    assert f.mean_delay_s == pytest.approx(H)
    assert f.stddev_delay_s == pytest.approx(0)
    assert f.score == pytest.approx(1 / 0.75)
    steady = figures([good(NOW + i * H, age_h=1) for i in range(4)], since=NOW)
    assert steady.score is not None and f.score is not None and steady.score < f.score
    assert figures(checks, since=NOW + 10 * H).score is None


def test_gate_needs_share_and_every_country() -> None:
    from syncd.dns.gate import MirrorEvidence, judge

    rel = {"daily": 100}
    ok = {"daily": 100}
    ms = [
        MirrorEvidence("a", "PL", True, ok, ok, True),
        MirrorEvidence("b", "PL", True, ok, ok, True),
        MirrorEvidence("c", "DE", True, ok, {"daily": 99}, True),
        MirrorEvidence("d", "DE", False, None, None, True),
    ]
    v = judge(ms, rel, 0.6)
    assert (v.reached, v.laggards, v.empty_countries) == (False, ("c",), ("DE",))
    assert v.reason == "no mirror serves the release yet in DE"
    ms[2] = MirrorEvidence("c", "DE", True, ok, ok, True)
    assert judge(ms, rel, 0.6).reached
    # reported by the client but not seen over HTTP, or not fresh: not counted
    ms[2] = MirrorEvidence("c", "DE", True, ok, ok, False)
    assert not judge(ms, rel, 0.6).reached
