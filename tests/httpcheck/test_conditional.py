"""The conditional checks' pure decisions (syncd.httpcheck.conditional) and their record
(syncd.monitor.provenstore), as properties over hostile header values.

Proven able to fail: with `still` not comparing the size, its property failed on a size one
byte off; with `ProvenStore.replace` not forgetting a mirror gone from the inventory, the store
test failed."""

from __future__ import annotations

import sqlite3

from hypothesis import given
from hypothesis import strategies as st

from syncd.httpcheck.answer import range_size
from syncd.httpcheck.conditional import (
    MAX_VALIDATOR,
    Proven,
    Validators,
    file_span,
    last_bytes,
    remember,
    still,
    usable_for,
    validators,
)
from syncd.monitor.provenstore import ProvenStore
from syncd.sqlite import open_db

HOSTILE = st.one_of(
    st.text(max_size=300),
    st.sampled_from(['W/"abc"', '"a"b"', "abc", '""', '"\x00"', '"\u00e9"', '"' + "a" * 300 + '"']),
)


@given(HOSTILE, HOSTILE)
def test_only_a_strong_quoted_printable_etag_and_a_printable_date_are_kept(
    etag: str, date: str
) -> None:
    v = validators([("ETag", etag), ("Last-Modified", date)])
    if v.etag is not None:
        assert v.etag == etag.strip()
        assert v.etag.startswith('"') and v.etag.endswith('"') and len(v.etag) >= 2
        assert '"' not in v.etag[1:-1] and v.etag.isascii() and v.etag.isprintable()
        assert len(v.etag) <= MAX_VALIDATOR
    if v.last_modified is not None:
        assert v.last_modified.isascii() and v.last_modified.isprintable()
        assert 0 < len(v.last_modified) <= MAX_VALIDATOR


def test_a_header_sent_twice_with_two_values_is_no_validator() -> None:
    twice = validators([("ETag", '"a"'), ("etag", '"b"'), ("Last-Modified", "x")])
    assert twice == Validators(None, "x")
    assert validators([("ETag", 'W/"a"')]) == Validators()
    assert not Validators().usable


SEEN = st.builds(
    Validators,
    st.one_of(st.none(), st.sampled_from(['"a"', '"b"'])),
    st.one_of(st.none(), st.sampled_from(["Mon", "Tue"])),
)


@given(SEEN, SEEN, st.integers(0, 10), st.integers(0, 10), st.sampled_from(["p", "q"]))
def test_still_holds_only_for_the_same_proof_size_and_usable_validators(
    then: Validators, now: Validators, size: int, served: int, proof: str
) -> None:
    known = Proven("daily.cvd", "p", size, then.etag, then.last_modified)
    held = still(known, proof, served, now)
    assert held == (proof == "p" and served == size and now.usable and now == then)
    assert not still(None, proof, served, now)
    assert not still(known, proof, None, now)


@given(SEEN, st.integers(0, 10), st.sampled_from(["p", "q"]))
def test_what_is_remembered_is_leaned_on_only_for_its_own_proof(
    seen: Validators, size: int, proof: str
) -> None:
    known = remember("f", "p", size, seen)
    assert (known is None) == (not seen.usable)
    if known is not None:
        assert (known.etag, known.last_modified) == (seen.etag, seen.last_modified)
        assert (usable_for(known, proof, size) is not None) == (proof == "p")
        assert usable_for(known, "p", size + 1) is None


@given(st.integers(-5, 10**12), st.integers(-5, 10**4))
def test_the_span_asked_is_within_the_file(size: int, tail: int) -> None:
    span = file_span(size, tail)
    if size <= 0 or tail <= 0:
        assert span is None
        return
    assert span is not None
    first, last = span
    assert 0 <= first <= last == size - 1
    assert last - first + 1 == min(size, tail)
    # the suffix Range asks for that very span: the same count of last bytes
    assert last_bytes(size, tail) == f"bytes=-{last - first + 1}"


@given(st.text(max_size=80))
def test_range_size_reads_only_a_whole_content_range(value: str) -> None:
    size = range_size(value)
    if size is not None:
        assert value.strip().startswith("bytes ") and value.strip().endswith(f"/{size}")
    assert range_size("bytes 0-511/60000000") == 60_000_000
    assert range_size("bytes 0-511/*") is None
    assert range_size(None) is None


def test_the_store_keeps_each_targets_proof_and_forgets_mirrors_gone() -> None:
    conn: sqlite3.Connection = open_db(":memory:")
    store = ProvenStore(conn)
    hostile = "m'; DROP TABLE monitor_proven; --\u202e"
    one = Proven("daily-1.cdiff", "ab" * 32, 10, '"x"', None)
    two = Proven("daily.cvd", "1:" + "c" * 32, 4000, None, "Mon, 01 Jan 2029 00:00:00 GMT")
    store.replace({(hostile, "IPv4"): [one, two], ("b", "IPv6"): [one]}, [hostile, "b"], 1.0)
    assert store.known() == {
        (hostile, "IPv4"): {"daily-1.cdiff": one, "daily.cvd": two},
        ("b", "IPv6"): {"daily-1.cdiff": one},
    }
    # a target whose check failed (absent) keeps its proof; one checked holds only the new
    store.replace({(hostile, "IPv4"): [two]}, [hostile, "b"], 2.0)
    assert store.known()[(hostile, "IPv4")] == {"daily.cvd": two}
    assert store.known()[("b", "IPv6")] == {"daily-1.cdiff": one}
    # a mirror no longer checked is forgotten
    store.replace({}, [hostile], 3.0)
    assert set(store.known()) == {(hostile, "IPv4")}
    assert ProvenStore(conn).known() == store.known()  # migrating twice changes nothing
