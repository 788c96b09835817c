"""The access log's counting (clientside.core.accesslog): lines of the combined and the
combinedrealsize formats, hostile lines, the reading plan across rotations, and the sums that
hold for any bytes (hypothesis)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from clientside.core.accesslog import (
    CLIENTS_MAX,
    KINDS,
    LINE_MAX,
    SIZE_MAX,
    STATUS_CLASSES,
    FileFacts,
    Position,
    Read,
    Scanner,
    Tally,
    client_version,
    file_kind,
    plan_reads,
)

WHEN = "07/Dec/2026:09:00:00 +0000"  # log text only, never compared (noqa: date)
UA = "ClamAV/1.4.6 (OS: linux-gnu, ARCH: x86_64, CPU: x86_64, UUID: 0f3e)"


def line(
    target: str = "/daily.cvd",
    status: str = "200",
    size: str = "1234",
    agent: str = UA,
    method: str = "GET",
) -> bytes:
    request = f"{method} {target} HTTP/1.1"
    return f'192.0.2.7 - - [{WHEN}] "{request}" {status} {size} "-" "{agent}"'.encode()


def tally(*lines: bytes) -> Tally:
    t = Tally()
    for ln in lines:
        t.add(ln)
    return t


def consistent(t: Tally) -> None:
    assert t.lines == t.requests + t.excluded + t.malformed
    assert sum(r for r, _ in t.kinds.values()) == t.requests
    assert sum(b for _, b in t.kinds.values()) == t.bytes
    assert sum(t.statuses.values()) == t.requests
    assert sum(t.clients.values()) == t.requests
    figures = [t.lines, t.requests, t.bytes, t.excluded, t.malformed]
    figures += [*t.statuses.values(), *t.clients.values()]
    figures += [x for pair in t.kinds.values() for x in pair]
    assert min(figures) >= 0
    assert set(t.kinds) == set(KINDS) and set(t.statuses) == set(STATUS_CLASSES)
    assert len(t.clients) <= CLIENTS_MAX


def test_a_combined_line_counts_its_kind_bytes_status_and_client() -> None:
    t = tally(line())
    consistent(t)
    assert (t.requests, t.bytes, t.kinds["cvd"], t.statuses["2xx"]) == (1, 1234, [1, 1234], 1)
    assert t.clients == {"1": 1}


def test_combinedrealsize_is_the_same_shape_and_extra_fields_are_ignored() -> None:
    # Apache's %O in the size's place; some admins log more fields after the agent
    t = tally(line(size="1534") + b' "extra" 0.004', line(size="-", status="304"))
    consistent(t)
    assert (t.requests, t.bytes, t.statuses["304"], t.statuses["2xx"]) == (2, 1534, 1, 1)


def test_kinds_statuses_and_versions() -> None:
    assert [file_kind(p) for p in ("/daily-28034.cdiff", "/main.cvd.sign", "/daily.cld")] == [
        "cdiff",
        "sign",
        "cvd",
    ]
    assert file_kind("/daily.cvd?x=1") == "cvd"
    assert file_kind("http://db.de.clamav.net/daily-1.cdiff") == "cdiff"
    assert file_kind("/timestamp") == file_kind("/") == file_kind("") == "other"
    assert client_version("ClamAV/0.103.8 (OS: linux)") == "0.103"
    assert client_version("ClamAV/1.0.9") == "1"
    assert client_version("Wget/1.21") == client_version("") == "other"
    t = tally(
        line(status="206"),
        line(status="404", target="/daily-1.cdiff"),
        line(status="503", target="/x.cvd.sign"),
        line(status="302"),
        line(status="999"),
    )
    consistent(t)
    assert t.statuses == {"2xx": 1, "304": 0, "3xx": 1, "4xx": 1, "5xx": 1, "other": 1}


def test_the_monitors_own_requests_are_excluded() -> None:
    t = tally(line(agent="ClamAV-MirrorCheck"), line(agent="ClamAV-MirrorCheck/2"), line())
    consistent(t)
    assert (t.excluded, t.requests, t.bytes) == (2, 1, 1234)


def test_hostile_lines_are_malformed_not_counted() -> None:
    hostile = [
        line(size="-5"),  # a negative size
        line(size="1" * 21),  # more digits than any size
        b"\x00\xff\xfe binary \x80",
        b"",
        b"x" * (LINE_MAX + 1),  # oversize
        line()[:40],  # cut
        line(status="20"),
        b'1.2.3.4 - - [t] "GET /daily.cvd HTTP/1.1" 200 5 "-" "ClamAV/1.4.6',  # no closing quote
    ]
    t = tally(*hostile)
    consistent(t)
    assert (t.malformed, t.requests, t.bytes) == (len(hostile), 0, 0)


def test_a_huge_size_is_clamped() -> None:
    t = tally(line(size="9" * 20), line(size=str(SIZE_MAX + 1)))
    consistent(t)
    assert t.bytes == 2 * SIZE_MAX


def test_an_agent_that_injects_quotes_fields_or_newlines_counts_once() -> None:
    # nginx escapes a quote as \x22, Apache as \"; neither makes a new field or line: an
    # agent is excluded only when it begins with ClamAV-MirrorCheck
    t = tally(
        line(agent=r"x\x22 200 999999 \x22-\x22 \x22ClamAV-MirrorCheck"),
        line(agent=r"x\" 200 999999 \"-\" \"ClamAV-MirrorCheck"),
        line(agent="ClamAV/1.4.6\u202e\u0000 (OS: \x1b[31m)"),
        line(agent=r"ClamAV-MirrorCheck\" \"ClamAV/1.4.6"),
    )
    consistent(t)
    assert (t.requests, t.excluded, t.bytes) == (3, 1, 3 * 1234)
    assert t.clients == {"1": 1, "other": 2}


def test_distinct_client_versions_are_bounded() -> None:
    t = tally(*(line(agent=f"ClamAV/{n}.0.0") for n in range(1, 100)))
    consistent(t)
    assert len(t.clients) == CLIENTS_MAX and t.clients["other"] == 99 - (CLIENTS_MAX - 1)


def test_the_scanner_resumes_only_after_whole_lines() -> None:
    data = line() + b"\n" + line(target="/main.cvd")[:30]
    t = Tally()
    s = Scanner(t)
    s.feed(data)
    assert (t.lines, s.consumed) == (1, len(line()) + 1)
    s.end_of_file()  # a rotated file's cut last line counts (malformed here)
    assert (t.lines, t.malformed, s.consumed) == (2, 1, len(data))


def test_an_oversize_line_is_counted_once_across_chunks_and_reads() -> None:
    t = Tally()
    s = Scanner(t)
    s.feed(b"y" * (LINE_MAX + 10))
    assert s.skipping and s.consumed == LINE_MAX + 10 and t.malformed == 1
    s2 = Scanner(t, skipping=True)  # the next sync goes on skipping
    s2.feed(b"y" * 100 + b"\n" + line() + b"\n")
    consistent(t)
    assert (t.lines, t.malformed, t.requests) == (2, 1, 1)


# the reading plan

A = FileFacts(1, 100, 5000)


def test_plan_first_read_reads_the_current_file_from_its_start() -> None:
    assert plan_reads(None, A, None) == ([Read("current", 0, False)], None)


def test_plan_same_file_goes_on_from_the_offset() -> None:
    assert plan_reads(Position(1, 100, 4000), A, None) == ([Read("current", 4000, False)], None)
    assert plan_reads(Position(1, 100, 5000, True), A, None) == (
        [Read("current", 5000, True)],
        None,
    )


def test_plan_truncated_file_starts_over_with_a_warning() -> None:
    reads, warning = plan_reads(Position(1, 100, 9000), A, None)
    assert reads == [Read("current", 0, False)] and warning and "shrank" in warning


def test_plan_rotated_file_is_finished_first_when_it_is_dot_1() -> None:
    new, old = FileFacts(1, 200, 10), FileFacts(1, 100, 6000)
    assert plan_reads(Position(1, 100, 4000), new, old) == (
        [Read("rotated", 4000, False), Read("current", 0, False)],
        None,
    )
    # nothing left in the rotated file
    assert plan_reads(Position(1, 100, 6000), new, old) == ([Read("current", 0, False)], None)


def test_plan_rotated_file_gone_starts_over_with_a_warning() -> None:
    new, other = FileFacts(1, 200, 10), FileFacts(1, 150, 10)
    for rotated in (None, other):
        reads, warning = plan_reads(Position(1, 100, 4000), new, rotated)
        assert reads == [Read("current", 0, False)] and warning and "rotated" in warning


def test_plan_no_log_reads_nothing() -> None:
    reads, warning = plan_reads(Position(1, 100, 4000), None, None)
    assert reads == [] and warning


# properties


@given(st.binary(max_size=4000), st.lists(st.integers(1, 600), max_size=20))
def test_any_bytes_in_any_chunks_count_without_error_and_add_up(
    data: bytes, cuts: list[int]
) -> None:
    whole, pieces = Tally(), Tally()
    one = Scanner(whole)
    one.feed(data)
    many = Scanner(pieces)
    at = 0
    for cut in cuts:
        many.feed(data[at : at + cut])
        at += cut
    many.feed(data[at:])
    consistent(whole)
    consistent(pieces)
    assert one.consumed == many.consumed <= len(data)
    assert whole.as_report(since=None, complete=True) == pieces.as_report(since=None, complete=True)


lines_st = st.lists(
    st.one_of(
        st.builds(
            line,
            target=st.sampled_from(["/daily.cvd", "/d-1.cdiff", "/m.cvd.sign", "/", "/x?y"]),
            status=st.integers(0, 999).map(lambda n: f"{n:03d}"),
            size=st.one_of(st.just("-"), st.integers(0, 10**20).map(str)),
            agent=st.one_of(
                st.just("ClamAV-MirrorCheck"),
                st.builds("ClamAV/{}.{}.1".format, st.integers(0, 99), st.integers(0, 200)),
                st.text(max_size=40).map(lambda s: s.replace('"', "").replace("\\", "")),
            ),
        ),
        st.binary(max_size=200),
    ),
    max_size=40,
)


@given(lines_st)
def test_any_lines_add_up(items: list[bytes]) -> None:
    t = Tally()
    s = Scanner(t)
    s.feed(b"\n".join(items) + b"\n")
    consistent(t)
