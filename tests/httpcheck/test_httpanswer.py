"""The pure judgements of a mirror's HTTP answer (syncd.httpcheck.answer) and of a CVD's tail
(syncd.release.manifest.tail_problem): properties over arbitrary headers, sizes and ranges.

Each property was seen to fail on a planted bug: `encoding_problem` accepting ``gzip`` (the
identity-only rule), `framing_problem` ignoring Transfer-Encoding beside Content-Length, and
`tail_span` counting the header's bytes (first < 512)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from syncd.httpcheck.answer import (
    TAIL_BYTES,
    encoding_problem,
    framing_problem,
    range_problem,
    tail_span,
)
from syncd.release.manifest import CvdTail, tail_problem

CODINGS = st.sampled_from(
    ["identity", "IDENTITY", " identity ", "gzip", "x-gzip", "deflate", "br", "zstd", "compress"]
)
NAMES = st.sampled_from(["Content-Encoding", "content-encoding", "CONTENT-ENCODING"])
TEXT = st.text(max_size=30)


@given(st.lists(st.tuples(NAMES, st.lists(CODINGS, max_size=4).map(", ".join)), max_size=3))
def test_only_identity_is_accepted(lines: list[tuple[str, str]]) -> None:
    codings = [c.strip().lower() for _, v in lines for c in v.split(",") if c.strip()]
    problem = encoding_problem(lines)
    assert (problem is None) == all(c == "identity" for c in codings)
    if problem:
        assert problem.startswith("answered with Content-Encoding ")
        assert "\n" not in problem


@given(st.lists(st.tuples(TEXT, TEXT), max_size=6))
def test_any_encoding_header_is_judged_in_one_line(lines: list[tuple[str, str]]) -> None:
    for judge in (encoding_problem, framing_problem):
        problem = judge(lines)
        assert problem is None or (problem and "\n" not in problem[:200])


@given(
    st.lists(st.integers(0, 10**12).map(str), max_size=3),
    st.lists(st.sampled_from(["chunked", "gzip, chunked", ""]), max_size=2),
)
def test_framing_is_one_length_or_chunked_never_both(
    lengths: list[str], encodings: list[str]
) -> None:
    lines = [("Content-Length", n) for n in lengths] + [("Transfer-Encoding", e) for e in encodings]
    problem = framing_problem(lines)
    if lengths and encodings:
        assert problem is not None and "both Content-Length and Transfer-Encoding" in problem
    elif len(set(lengths)) > 1:
        assert problem is not None and "differing Content-Length" in problem
    else:
        assert problem is None


def test_framing_refuses_a_length_that_is_no_number() -> None:
    assert framing_problem([("Content-Length", "-1")]) is not None
    assert framing_problem([("Content-Length", "12, 13")]) is not None
    assert framing_problem([("Content-Length", "12, 12")]) is None


@given(st.integers(0, 10**11))
def test_the_tail_is_the_last_bytes_after_the_header(size: int) -> None:
    span = tail_span(size)
    if size <= 512:
        assert span is None
        return
    assert span is not None
    first, last = span
    assert last == size - 1
    assert first >= 512
    assert last - first + 1 == min(TAIL_BYTES, size - 512)


@given(st.integers(513, 10**11), st.integers(0, 10**11), st.integers(0, 10**11), TEXT)
def test_only_the_exact_content_range_passes(size: int, a: int, b: int, noise: str) -> None:
    first, last = tail_span(size) or (0, 0)
    assert range_problem(f"bytes {first}-{last}/{size}", first, last, size) is None
    assert range_problem(f" bytes {first}-{last}/{size} ", first, last, size) is None
    if (a, b) != (first, last):
        assert range_problem(f"bytes {a}-{b}/{size}", first, last, size) is not None
    if a != size:
        problem = range_problem(f"bytes {first}-{last}/{a}", first, last, size)
        assert problem == f"is {a} bytes, the release's is {size}"
    assert range_problem(None, first, last, size) == "answered 206 without a Content-Range"
    assert range_problem(f"bytes {first}-{last}/*", first, last, size) is not None
    if noise.strip() != f"bytes {first}-{last}/{size}":
        assert range_problem(noise, first, last, size) is not None


@given(st.binary(min_size=1, max_size=64), st.binary(max_size=64))
def test_a_tail_passes_only_with_the_same_md5_and_bytes(data: bytes, other: bytes) -> None:
    tail = CvdTail("daily", 28034, "a" * 32, 512 + len(data), 512, data)
    assert tail.last == tail.first + len(data) - 1
    assert tail_problem(tail, "a" * 32, data) is None
    if other != data:
        assert tail_problem(tail, "a" * 32, other) == (
            f"/daily.cvd's last {len(data)} bytes differ from the release's"
        )
    assert "with another body" in (tail_problem(tail, "b" * 32, data) or "")
