"""What a mirror already proved it serves, and how a monitor pass asks again cheaply. Pure.

The publish's proof reads each release file (the current cdiff, the .sign files) whole and
each CVD's header and last 4096 bytes, every time. A monitor pass repeats its checks every
half hour on every mirror and address family, so it remembers what a check proved (`Proven`:
the file, what was proven of it, its size and validators) and asks again with one small
request per file:

- **A release file** is read whole and compared once per mirror, address family and file
  (its SHA-256 in the release); **a CVD** has its header read and its tail compared once per
  mirror, family, version and MD5. Then each pass asks only ``Range: bytes=-32`` (the
  file's last `FILE_TAIL_BYTES`): the answer must carry the validators remembered
  (`still`), the release's size in its Content-Range, and the release's bytes. A CVD that
  passes is the very file proven, header and all, so its header is not asked again.
- **Never a false fresh.** Whatever else comes back is judged as a first pass would: other
  validators (a file touched, replaced, a server that changed them) or another answer mean
  the file is read whole again (a CVD: its header and tail, which judge any other answer
  too); a release file's other bytes or another size are the problem they show. A server
  that sends no validator, or only a weak ETag, is read whole every pass, as before. No
  precondition header is sent: the validators are compared here, which is what a server's
  ``If-Match`` or ``If-Range`` would compare, and a server that ignores those headers cannot
  make this comparison lie. What no check short of a whole read can see is a file rewritten
  before its last bytes with its size, its last bytes and its modification time kept
  (nginx's ETag is the time and the size): docs/monitoring.md says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MAX_VALIDATOR = 200  # an ETag or a date longer than this is not remembered


@dataclass(frozen=True)
class Validators:
    """A file's validators as an answer gave them (None: absent or unusable)."""

    etag: str | None = None  # strong only: a weak one (W/"...") cannot guard a Range
    last_modified: str | None = None

    @property
    def usable(self) -> bool:
        return self.etag is not None or self.last_modified is not None


@dataclass(frozen=True)
class Proven:
    """What one check proved a mirror serves on one address family: `name` (a release file, or
    ``<db>.cvd`` for a CVD's tail) was `proof` (the release file's SHA-256; a CVD's
    ``version:md5``), `size` bytes, with these validators."""

    name: str
    proof: str
    size: int
    etag: str | None
    last_modified: str | None

    @property
    def validators(self) -> Validators:
        return Validators(self.etag, self.last_modified)


def _printable(value: str) -> bool:
    return 0 < len(value) <= MAX_VALIDATOR and value.isascii() and value.isprintable()


def validators(headers: Iterable[tuple[str, str]]) -> Validators:
    """Given an answer's header lines, return its validators: one strong ETag (quoted, ASCII)
    and one Last-Modified; a header sent twice with different values, a weak or unquoted ETag,
    or anything unprintable or longer than `MAX_VALIDATOR` counts as absent."""
    etags = {v.strip() for k, v in headers if k.lower() == "etag"}
    dates = {v.strip() for k, v in headers if k.lower() == "last-modified"}
    etag = next(iter(etags)) if len(etags) == 1 else None
    if etag is not None and not (
        _printable(etag) and len(etag) >= 2 and etag[0] == etag[-1] == '"' and '"' not in etag[1:-1]
    ):
        etag = None
    date = next(iter(dates)) if len(dates) == 1 else None
    if date is not None and not _printable(date):
        date = None
    return Validators(etag, date)


def last_bytes(size: int, tail: int) -> str:
    """The Range header value asking for the last `tail` bytes of a file of `size` bytes
    (the suffix form: shorter than the offsets, the same span; syncd.httpcheck.answer
    checks the offsets answered)."""
    return f"bytes=-{max(1, min(size, tail))}"


def file_span(size: int, tail: int) -> tuple[int, int] | None:
    """Given a release file's size and how many of its last bytes are compared, return the
    first and last offsets (inclusive) asked for; None for an empty file."""
    if size <= 0 or tail <= 0:
        return None
    return max(0, size - tail), size - 1


def cvd_proof(version: int, md5: str) -> str:
    """What a CVD's compared tail proves: this version with this body."""
    return f"{version}:{md5.lower()}"


def still(known: Proven | None, proof: str, size: int | None, seen: Validators) -> bool:
    """Whether `known` still holds for a file that must be `proof` of `size` bytes, given the
    validators a fresh answer carried: the same proof and size, and the same usable
    validators."""
    return (
        known is not None
        and known.proof == proof
        and size is not None
        and known.size == size
        and seen.usable
        and seen == known.validators
    )


def remember(name: str, proof: str, size: int, seen: Validators) -> Proven | None:
    """What to remember of a file just proven whole (or a CVD tail just compared); None when
    its answer carried no usable validator (it is read whole again next pass)."""
    if not seen.usable:
        return None
    return Proven(name, proof, size, seen.etag, seen.last_modified)


def usable_for(known: Proven | None, proof: str, size: int) -> Proven | None:
    """`known` when a steady pass may lean on it for a file that must be `proof` of
    `size` bytes (same proof and size, a validator to compare); else None (read it whole)."""
    if known is None or known.proof != proof or known.size != size:
        return None
    return known if known.validators.usable else None
