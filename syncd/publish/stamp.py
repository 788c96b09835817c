"""The heartbeat between releases: the source tree's ``timestamp`` moves on every few hours and
reaches every mirror, so that a mirror's served timestamp says how long ago it last synced (the
old guide: "every three hours we upload a file called timestamp on every mirror"), and the TXT
record's time moves on with it, so that freshclam keeps trusting DNS.

Pure: the stamp on file and `now` in, the next stamp out; nothing here reads a clock.
"""

from __future__ import annotations

from datetime import UTC, datetime

from syncd.errors import SyncdError

MAX_STAMP_BYTES = 64  # "1767225600\n" is 11; anything much longer is not a timestamp file


class HeartbeatError(SyncdError, ValueError):
    """The heartbeat must not run as asked; the message says why and what to do."""


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def parse_stamp(raw: bytes) -> int:
    """Given the bytes of a ``timestamp`` file, return its unix time; raise HeartbeatError when
    they are not one decimal number of seconds (what mirrors serve and the monitor reads)."""
    text = raw[: MAX_STAMP_BYTES + 1].decode("ascii", "replace").strip()
    if len(raw) > MAX_STAMP_BYTES or not text.isdigit() or not text.isascii():
        raise HeartbeatError(
            f"the source tree's timestamp file holds {text[:40]!r}, not a unix time: "
            "write one (e.g. date +%s > timestamp) or remove it"
        )
    return int(text)


def next_stamp(previous: int | None, now: float) -> int:
    """Given the tree's current stamp (None when it has none) and `now`, return the stamp to
    write; raise HeartbeatError when that would move the timestamp backwards."""
    stamp = int(now)
    if previous is not None and stamp < previous:
        raise HeartbeatError(
            f"the source tree's timestamp ({_iso(previous)}) is later than now "
            f"({_iso(stamp)}): refusing to move it backwards; check this host's clock (NTP)"
        )
    return stamp
