"""The maintenance notice (``local_maintenance``, the reports' ``maintenance``): its parser as
the boundary it is, and its times. Pure.

Proven to fail: with the size check in ``parse_notice`` removed the oversize test fails; with
the window bound in ``check_window`` removed the 100-year test and the property fail (a
window longer than the bound came back); with ``clean_reason`` returning its input the
property fails on the first control character hypothesis draws."""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pushwire.maintenance import (
    DAY,
    DEFAULT_MAX_S,
    MAX_NOTICE_BYTES,
    MAX_REASON,
    Notice,
    NoticeError,
    clean_reason,
    format_time,
    from_json,
    in_effect,
    make_notice,
    over,
    parse_notice,
    parse_time,
    render_notice,
)

NOW = 1_800_000_000.0  # an injected clock: a moment, not today's date


def _notice(**fields: object) -> bytes:
    doc = {
        "maintenance_version": 1,
        "from": format_time(NOW),
        "until": format_time(NOW + 7200),
        "reason": "new disks",
    } | fields
    return json.dumps(doc).encode()


def test_a_notice_round_trips() -> None:
    notice = make_notice(NOW + 60, NOW + 3600, "new disks", now=NOW)
    assert parse_notice(render_notice(notice)) == notice
    assert from_json(json.loads(render_notice(notice))) == notice
    assert in_effect(notice, NOW + 60) and not in_effect(notice, NOW)
    assert in_effect(notice, NOW, lead_s=60) and not in_effect(notice, NOW + 3600)
    assert over(notice, NOW + 3600) and not over(notice, NOW + 3599)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"x" * (MAX_NOTICE_BYTES + 1), "larger than"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"{not json", "not one JSON object"),
        (b"[1, 2]", "JSON object"),
        (b'{"maintenance_version": NaN}', "NaN"),
        (b"[" * 2000, "not one JSON object"),
        (_notice(maintenance_version=True), "maintenance_version"),
        (_notice(maintenance_version=0), "maintenance_version"),
        (_notice(until=format_time(NOW + 100 * 365 * DAY)), "longer than"),
        (_notice(until=format_time(NOW - 1)), "before it starts"),
        (_notice(until=7200), "'until' time"),
        (_notice(**{"from": "tomorrow"}), "not a time"),
        (_notice(**{"from": "2026-02-30T00:00:00Z"}), "not a valid date"),  # text only (noqa: date)
        (_notice(**{"from": "0000-01-01T00:00:00Z"}), "not a valid date"),  # text only (noqa: date)
        (_notice(reason=["x"]), "reason is not a string"),
    ],
)
def test_what_is_no_notice_is_refused_in_one_line(data: bytes, why: str) -> None:
    with pytest.raises(NoticeError, match=why) as err:
        parse_notice(data)
    assert "\n" not in str(err.value) and len(str(err.value)) < 300


def test_unknown_keys_and_a_newer_version_are_read_for_what_they_keep() -> None:
    notice = parse_notice(_notice(maintenance_version=2, contact="x@example.org"))
    assert notice == Notice(NOW, NOW + 7200, "new disks")


def test_a_reason_is_one_clean_line() -> None:
    hostile = "disk\n\x1b[31mswap\u202e\u200b \t\tgpt" + "é" * 10 + "x" * 500
    notice = parse_notice(_notice(reason=hostile))
    assert notice.reason.startswith("disk [31mswap gpt")
    assert len(notice.reason) == MAX_REASON


def test_times_offsets_and_relative_ones() -> None:
    assert parse_time("2026-03-01T09:00:00Z") == parse_time(
        "2026-03-01T10:00:00+01:00"
    )  # text only (noqa: date)
    assert parse_time("2026-03-01T09:00Z") == parse_time(
        "2026-03-01 09:00:00.5z"
    )  # text only (noqa: date)
    assert parse_time("+2h", NOW) == NOW + 7200 and parse_time("now", NOW) == NOW
    assert parse_time("+1w", NOW) == NOW + 7 * DAY
    with pytest.raises(NoticeError, match="not a time"):
        parse_time("+2h")  # relative only against a clock
    with pytest.raises(NoticeError, match="not a valid"):
        parse_time("2026-03-01T09:00:00+24:00")  # text only (noqa: date)


reasons = st.text(max_size=400)
times = st.floats(0, 4_000_000_000, allow_nan=False).map(round)


@given(st.binary(max_size=MAX_NOTICE_BYTES + 10))
def test_any_bytes_are_a_notice_within_bounds_or_refused(data: bytes) -> None:
    try:
        notice = parse_notice(data)
    except NoticeError:
        return
    assert 0 < notice.ends - notice.starts <= DEFAULT_MAX_S
    assert notice.reason == clean_reason(notice.reason)


@given(
    st.fixed_dictionaries(
        {
            "maintenance_version": st.one_of(st.integers(-2, 3), st.booleans(), st.none()),
            "from": st.one_of(times.map(format_time), st.text(max_size=30), st.integers()),
            "until": st.one_of(times.map(format_time), st.text(max_size=30), st.none()),
            "reason": st.one_of(reasons, st.integers(), st.none()),
        },
        optional={"extra": st.text(max_size=10)},
    )
)
def test_any_json_object_is_a_notice_within_bounds_or_refused(doc: dict[str, object]) -> None:
    try:
        notice = parse_notice(json.dumps(doc).encode())
    except NoticeError:
        return
    assert doc["maintenance_version"] in (1, 2, 3) and doc["maintenance_version"] is not True
    assert 0 < notice.ends - notice.starts <= DEFAULT_MAX_S
    assert len(notice.reason) <= MAX_REASON
    assert not any(unicodedata.category(c) in ("Cc", "Cf") for c in notice.reason)
    assert "  " not in notice.reason and notice.reason == notice.reason.strip()


@given(times, st.integers(1, int(DEFAULT_MAX_S)), reasons.filter(clean_reason))
def test_what_the_client_writes_syncd_reads_back(starts: int, length: int, reason: str) -> None:
    notice = make_notice(starts, starts + length, reason, now=starts)
    assert parse_notice(render_notice(notice)) == notice
    assert len(render_notice(notice)) <= MAX_NOTICE_BYTES


@given(times, times, reasons)
def test_a_well_formed_window_is_read_only_within_its_bound(a: int, b: int, reason: str) -> None:
    data = _notice(**{"from": format_time(a), "until": format_time(b), "reason": reason})
    try:
        notice = parse_notice(data)
    except NoticeError:
        assert not 0 < b - a <= DEFAULT_MAX_S or len(data) > MAX_NOTICE_BYTES
        return
    assert (notice.starts, notice.ends) == (a, b) and notice.reason == clean_reason(reason)
    assert 0 < b - a <= DEFAULT_MAX_S
