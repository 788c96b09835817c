"""The maintenance policy (``syncd.monitor.maintenance``) and the gate's use of it: which window
is in effect when, from what the inventory, /local_maintenance and the reports said. Pure:
the time is passed in.

Proven to fail: with `window_in_effect` ignoring the lead, the lead test failed; with the
bound not applied, the bound test; with a problem sighting counted as a word, the garbage
test (a garbage notice cancelled the window); with `judge` counting mirrors in maintenance,
the gate test (the gate closed and PL counted as empty)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pushwire.maintenance import DAY, format_time
from syncd.dns.gate import MirrorEvidence, judge, serves_release
from syncd.monitor.maintenance import (
    HTTP,
    INVENTORY,
    REPORT,
    Sighting,
    Window,
    describe,
    http_sighting,
    lead_s,
    report_sighting,
    window_in_effect,
)

T = 1_800_000_000.0  # the injected clock's start
H = 3600.0
RELEASE = {"daily": 28034, "main": 62, "bytecode": 335}


def _notice(starts: float, ends: float, reason: str = "new disks") -> dict[str, object]:
    return {
        "maintenance_version": 1,
        "from": format_time(starts),
        "until": format_time(ends),
        "reason": reason,
    }


def _http(starts: float, ends: float, at: float) -> Sighting:
    seen = http_sighting(200, json.dumps(_notice(starts, ends)).encode(), at)
    assert seen is not None and seen.window is not None
    return seen


def test_in_effect_from_the_lead_before_the_start_until_the_end() -> None:
    seen = [_http(T + 2 * H, T + 4 * H, T)]
    lead = lead_s(600, 60)
    assert lead == 660
    on = lambda now: window_in_effect(None, seen, now, lead=lead, max_s=7 * DAY)  # noqa: E731
    assert on(T + 2 * H - lead - 1) is None
    assert on(T + 2 * H - lead) is not None and on(T + 3 * H) is not None
    assert on(T + 4 * H) is None  # past its end: ignored


def test_a_longer_held_ttl_makes_the_lead_longer() -> None:
    assert lead_s(600, 60, held_ttl=300) == 900 and lead_s(600, 60, held_ttl=5) == 660


def test_a_window_longer_than_the_bound_is_ignored() -> None:
    seen = [_http(T, T + 6 * DAY, T)]
    assert window_in_effect(None, seen, T + H, lead=0, max_s=7 * DAY) is not None
    assert window_in_effect(None, seen, T + H, lead=0, max_s=5 * DAY) is None
    century = http_sighting(200, json.dumps(_notice(T, T + 36500 * DAY)).encode(), T)
    assert (
        century is not None and century.window is None and "longer than" in (century.problem or "")
    )


def test_the_newest_word_of_the_mirror_counts_and_the_team_window_stands() -> None:
    announced = _http(T, T + 2 * H, T)
    cancelled = Sighting(REPORT, T + 60, None)  # a report without the notice: cancelled
    assert window_in_effect(None, [announced, cancelled], T + H, lead=0, max_s=DAY) is None
    team = Window(T, T + 3 * H, "by mail", INVENTORY)
    got = window_in_effect(team, [announced, cancelled], T + H, lead=0, max_s=DAY)
    assert got == team
    longer = _http(T, T + 5 * H, T + 120)
    assert window_in_effect(team, [announced, longer], T + H, lead=0, max_s=DAY) == longer.window


def test_a_notice_that_is_none_is_no_word() -> None:
    announced = _http(T, T + 2 * H, T)
    for status, body in ((200, b"<html>down for maintenance</html>"), (200, b"{" * 3000)):
        garbage = http_sighting(status, body, T + 60)
        assert garbage is not None and garbage.problem and garbage.window is None
        assert window_in_effect(None, [announced, garbage], T + H, lead=0, max_s=DAY)
    # a 503 of a web server in maintenance says nothing; a 404 says none
    assert http_sighting(503, b"", T) is None
    gone = http_sighting(404, b"", T + 60)
    assert gone == Sighting(HTTP, T + 60, None)
    assert window_in_effect(None, [announced, gone], T + H, lead=0, max_s=DAY) is None


@pytest.mark.parametrize(
    "value",
    ["x", 3, [1], {"maintenance_version": 1, "from": "x"}, {"until": None}],
)
def test_a_report_s_bad_maintenance_is_a_problem_not_an_error(value: object) -> None:
    seen = report_sighting({"status": "ok", "maintenance": value}, T)
    assert seen is not None and seen.window is None and seen.problem
    assert "\n" not in seen.problem


def test_a_report_without_the_key_says_nothing() -> None:
    assert report_sighting({"status": "ok"}, T) is None
    assert report_sighting(None, T) is None


def test_the_reason_shown_is_clean() -> None:
    assert "\u202e" not in describe(Window(T, T + H, "a\u202eb\nc", HTTP), T)
    text = describe(Window(T, T + H, "ok", HTTP), T + 60)
    assert text.startswith("maintenance until ") and "announced by its admin" in text


def _ev(name: str, *, maintenance: str | None = None) -> MirrorEvidence:
    return MirrorEvidence(name, "PL", True, RELEASE, RELEASE, True, maintenance)


def test_the_gate_leaves_a_mirror_in_maintenance_out_and_uncounted() -> None:
    assert serves_release(_ev("a"), RELEASE)
    assert not serves_release(_ev("a", maintenance="maintenance until ..."), RELEASE)
    # PL's only serving mirror in maintenance: the gate neither closes nor counts PL empty
    alone = judge([_ev("pl1", maintenance="m"), _ev("pl2")], RELEASE, 0.9)
    assert alone.reached and alone.laggards == () and alone.serving == ("pl2",)
    everyone = judge([_ev("pl1", maintenance="m")], RELEASE, 0.9)
    assert not everyone.reached


@given(
    st.floats(-10 * DAY, 10 * DAY),
    st.floats(0, 8 * DAY),
    st.floats(0, 2 * H),
    st.floats(-DAY, 10 * DAY),
)
def test_in_effect_exactly_between_start_minus_lead_and_end(
    start: float, length: float, lead: float, now: float
) -> None:
    w = Window(T + start, T + start + length, "r", HTTP)
    seen = [Sighting(HTTP, T, w)]
    got = window_in_effect(None, seen, T + now, lead=lead, max_s=7 * DAY)
    expect = length <= 7 * DAY and T + start - lead <= T + now < T + start + length
    assert (got is not None) == expect
