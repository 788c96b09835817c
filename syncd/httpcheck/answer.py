"""What a mirror's HTTP answer may be before syncd reads a byte of its body. Pure.

A mirror serves static files: each answer has one body, framed one way, sent as stored. So:

- **Encoding.** Any ``Content-Encoding`` other than ``identity`` is refused, whatever its body:
  syncd asks for no encoding (nor does freshclam, which would store what it got as the file),
  and a decoder in front of the cap would let a few hundred bytes (``gzip, gzip, gzip``)
  inflate to gigabytes.
- **Framing.** ``Content-Length`` together with ``Transfer-Encoding``, several differing
  ``Content-Length`` values, or one that is not a decimal number is refused (RFC 9112 6.3: a
  server that sends both is smuggling or broken; HTTP clients disagree on which one wins).
- **Ranges.** A Range request is answered 206 with exactly the span asked for, of a file of the
  expected size (``Content-Range: bytes START-END/SIZE``); a 200 carrying the whole file is read
  only up to the bytes asked for (the caller's cap), then refused.
- **Tails.** The proof compares the last `TAIL_BYTES` of each CVD (never the header's 512) with
  the source tree's, so a body cut short or swapped under a correct header is caught.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

TAIL_BYTES = 4096
_CONTENT_RANGE = re.compile(r"bytes ([0-9]{1,15})-([0-9]{1,15})/([0-9]{1,15}|\*)")


def _values(headers: Iterable[tuple[str, str]], name: str) -> list[str]:
    return [v.strip() for k, v in headers if k.lower() == name]


def encoding_problem(headers: Iterable[tuple[str, str]]) -> str | None:
    """Given an answer's header lines, return why its Content-Encoding is refused, or None
    (absent, or only ``identity``)."""
    codings = [
        c.strip().lower()
        for value in _values(headers, "content-encoding")
        for c in value.split(",")
        if c.strip()
    ]
    if all(c == "identity" for c in codings):
        return None
    shown = ", ".join(codings)[:60]
    return (
        f"answered with Content-Encoding {shown!r}: a mirror must serve its files as stored "
        "(syncd asks for no encoding, as freshclam)"
    )


def framing_problem(headers: Iterable[tuple[str, str]]) -> str | None:
    """Given an answer's header lines, return why its framing is refused, or None."""
    items = list(headers)
    lengths = _values(items, "content-length")
    if lengths and _values(items, "transfer-encoding"):
        return "answered with both Content-Length and Transfer-Encoding (conflicting framing)"
    numbers = {n.strip() for v in lengths for n in v.split(",")}
    if len(numbers) > 1:
        return "answered with differing Content-Length values (conflicting framing)"
    if any(not (n.isascii() and n.isdigit()) for n in numbers):
        return "answered with a Content-Length that is not a number"
    return None


def tail_span(size: int, tail: int = TAIL_BYTES, header: int = 512) -> tuple[int, int] | None:
    """Given a CVD's size, return the first and last offsets (inclusive) of its tail: its last
    `tail` bytes, none of them the header's; None when it has no body."""
    if size <= header:
        return None
    return max(header, size - tail), size - 1


def range_problem(content_range: str | None, first: int, last: int, size: int) -> str | None:
    """Given a 206 answer's Content-Range, return why it is not bytes `first`-`last` of a file
    of `size` bytes, or None."""
    if content_range is None:
        return "answered 206 without a Content-Range"
    m = _CONTENT_RANGE.fullmatch(content_range.strip())
    if m is None:
        return f"answered an unreadable Content-Range {content_range[:60]!r}"
    if m[3] == "*":
        return "answered a Content-Range without the file's size"
    if m[3] != str(size):
        return f"is {m[3]} bytes, the release's is {size}"
    if (int(m[1]), int(m[2])) != (first, last):
        return f"answered bytes {m[1]}-{m[2]} where {first}-{last} were asked for"
    return None


def range_size(content_range: str | None) -> int | None:
    """Given a 206 answer's Content-Range, return the size of the whole file it names; None
    when absent, unreadable or ``*``."""
    m = _CONTENT_RANGE.fullmatch((content_range or "").strip())
    if m is None or m[3] == "*":
        return None
    return int(m[3])
