"""The maintenance notice a mirror's admin announces: ``local_maintenance`` in the served tree
(written by ``clam-clientsync maintenance``), read back by syncd over HTTP and from the
``maintenance`` key of every report. Pure; runs on Python 3.9.

The file is one JSON object of at most ``MAX_NOTICE_BYTES`` bytes::

    {"maintenance_version": 1, "from": "2026-03-01T09:00:00Z",
     "until": "2026-03-01T11:00:00Z", "reason": "new disks"}

``from`` and ``until`` are RFC 3339 times (an offset other than ``Z`` is turned into UTC);
``reason`` is one line of at most ``MAX_REASON`` characters, without control or format
characters. Keys are only ever added: a reader ignores keys it does not know, and a newer
``maintenance_version`` keeps these three. A window longer than its reader's bound (a week
by default), or one whose end is not after its start, is no notice; a notice past its end is
ignored by whoever reads it (``in_effect``).
"""

import json
import re
import unicodedata
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, NamedTuple, Optional

NOTICE_NAME = "local_maintenance"
NOTICE_VERSION = 1
MAX_NOTICE_BYTES = 2048
MAX_REASON = 200  # characters
DAY = 86_400.0
DEFAULT_MAX_S = 7 * DAY  # the longest window a reader accepts unless told otherwise
MAX_AHEAD_S = 366 * DAY  # how far ahead a window may start

_TIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ](?P<h>[0-9]{2}):(?P<m>[0-9]{2})"
    r"(?::(?P<s>[0-9]{2})(?:\.[0-9]{1,9})?)?"
    r"(?P<zone>[Zz]|[+-][0-9]{2}:?[0-9]{2})\Z"
)
_RELATIVE = re.compile(r"\+(?P<n>[0-9]{1,4})(?P<unit>[smhdw])\Z")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY, "w": 7 * DAY}


class NoticeError(ValueError):
    """Not a notice we accept; the message says why in one line (safe to show: it quotes
    nothing of what was read beyond a cleaned excerpt)."""


class Notice(NamedTuple):
    starts: float  # unix seconds, UTC
    ends: float
    reason: str  # cleaned: one line, no control or format character, at most MAX_REASON


def clean_reason(text: str) -> str:
    """Return ``text`` as one line: line breaks and tabs made spaces, control and format
    characters (bidi overrides, zero-width ones) removed, runs of spaces made one, cut to
    ``MAX_REASON`` characters."""
    out = []
    for c in text[: MAX_REASON * 4]:
        if c.isspace():
            out.append(" ")
        elif unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            continue
        else:
            out.append(c)
    return " ".join("".join(out).split())[:MAX_REASON]


def format_time(at: float) -> str:
    """Return unix time ``at`` as RFC 3339 UTC to the second (``...Z``)."""
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str, now: Optional[float] = None) -> float:
    """Given an RFC 3339 time (``2026-03-01T09:00:00Z``, seconds optional, any offset), or,
    when ``now`` is given, ``now`` or a time relative to it (``+30m``, ``+2h``, ``+1d``,
    ``+1w``), return it as unix seconds; raise NoticeError."""
    if not isinstance(text, str):
        raise NoticeError("a time must be a string such as 2026-03-01T09:00:00Z")
    value = text.strip()
    if now is not None:
        if value == "now":
            return float(now)
        rel = _RELATIVE.match(value)
        if rel:
            return float(now) + int(rel.group("n")) * _UNITS[rel.group("unit")]
    found = _TIME.match(value)
    if not found:
        hint = " or +2h, +1d" if now is not None else ""
        raise NoticeError(
            f"{value[:40]!r} is not a time: write RFC 3339 UTC such as 2026-03-01T09:00:00Z{hint}"
        )
    zone = found.group("zone").upper()
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "") if zone != "Z" else "0000"
    offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    year, month, day = (int(p) for p in found.group("date").split("-"))
    try:
        moment = datetime(
            year,
            month,
            day,
            int(found.group("h")),
            int(found.group("m")),
            int(found.group("s") or 0),
            tzinfo=timezone(offset),
        )
        return float(moment.timestamp())
    except (ValueError, OverflowError):  # a day 31 of April, an offset of a day or more
        raise NoticeError(f"{value[:40]!r} is not a valid date and time") from None


def check_window(
    starts: float, ends: float, *, max_s: float = DEFAULT_MAX_S, now: Optional[float] = None
) -> None:
    """Raise NoticeError unless ``starts``..``ends`` is a window a reader accepts: its end
    after its start, at most ``max_s`` long, and (given ``now``) not over already and not
    starting more than a year ahead."""
    if ends <= starts:
        raise NoticeError(
            f"the window ends ({format_time(ends)}) before it starts ({format_time(starts)}): "
            "give --until after --from"
        )
    if ends - starts > max_s:
        raise NoticeError(
            f"the window is {(ends - starts) / 3600:.1f} h long, longer than "
            f"{max_s / 3600:.0f} h ({max_s / DAY:g} days): announce a shorter one, or ask "
            "the team to take the mirror out of the inventory"
        )
    if now is not None and ends <= now:
        raise NoticeError(f"the window ended already ({format_time(ends)}): give a later --until")
    if now is not None and starts - now > MAX_AHEAD_S:
        raise NoticeError("the window starts more than a year from now: announce it closer")


def make_notice(
    starts: float, ends: float, reason: str, *, now: float, max_s: float = DEFAULT_MAX_S
) -> Notice:
    """Return the notice of a window announced at ``now``; raise NoticeError naming what is
    wrong with it (see ``check_window``). The reason is cleaned (``clean_reason``)."""
    check_window(starts, ends, max_s=max_s, now=now)
    why = clean_reason(reason)
    if not why:
        raise NoticeError("the reason is empty: say in a few words why, such as 'new disks'")
    return Notice(float(starts), float(ends), why)


def to_json(notice: Notice) -> Dict[str, Any]:
    """Return the notice as its JSON object (the file's, and the report's ``maintenance``)."""
    return {
        "maintenance_version": NOTICE_VERSION,
        "from": format_time(notice.starts),
        "until": format_time(notice.ends),
        "reason": notice.reason,
    }


def render_notice(notice: Notice) -> bytes:
    """Return the bytes of ``local_maintenance`` (ASCII JSON and a newline)."""
    return (json.dumps(to_json(notice), ensure_ascii=True) + "\n").encode("ascii")


def from_json(value: Any, *, max_s: float = DEFAULT_MAX_S) -> Notice:
    """Given the JSON value of a notice (a report's ``maintenance``, or the file's), return
    it; raise NoticeError. Unknown keys are ignored; times keep to the second."""
    if not isinstance(value, dict):
        raise NoticeError("a maintenance notice is a JSON object")
    version = value.get("maintenance_version")
    if type(version) is not int or version < 1:
        raise NoticeError("the notice has no maintenance_version (a positive integer)")
    parts = []
    for key in ("from", "until"):
        text = value.get(key)
        if not isinstance(text, str):
            raise NoticeError(f"the notice has no {key!r} time (an RFC 3339 string)")
        parts.append(parse_time(text[:64]))
    reason = value.get("reason", "")
    if not isinstance(reason, str):
        raise NoticeError("the notice's reason is not a string")
    starts, ends = parts
    check_window(starts, ends, max_s=max_s)
    return Notice(starts, ends, clean_reason(reason))


def parse_notice(data: bytes, *, max_s: float = DEFAULT_MAX_S) -> Notice:
    """Given the bytes of ``local_maintenance`` (as read, bounded by the reader), return the
    notice; raise NoticeError for anything else: more than ``MAX_NOTICE_BYTES``, not UTF-8,
    not one JSON object, numbers JSON has no room for, a window not accepted."""
    if len(data) > MAX_NOTICE_BYTES:
        raise NoticeError(f"the notice is larger than {MAX_NOTICE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NoticeError("the notice is not UTF-8 text") from None
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_no_float)
    except NoticeError:
        raise
    except (ValueError, RecursionError):
        raise NoticeError("the notice is not one JSON object") from None
    return from_json(value, max_s=max_s)


def _no_constant(name: str) -> Any:
    raise NoticeError(f"the notice holds {name[:12]}, which is not JSON")


def _no_float(text: str) -> Any:
    return 0.0  # no field of a notice is a number but the version, an integer


def in_effect(notice: Notice, now: float, lead_s: float = 0.0) -> bool:
    """Whether the window is on at ``now``, counting ``lead_s`` seconds before it starts."""
    return notice.starts - lead_s <= now < notice.ends


def over(notice: Notice, now: float) -> bool:
    """Whether the window has ended at ``now`` (a notice past its end is ignored)."""
    return now >= notice.ends
