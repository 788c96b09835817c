"""Maintenance windows: when a mirror is out of the DNS rotation and its alert mails are held
because its admin (or the team, for a window announced by mail) said it would be down. Pure:
what was seen and `now` in, the window in effect out.

The rules, in one place:

- A window comes from the inventory (``syncd mirrors set NAME maintenance=FROM..UNTIL
  reason=...``), or from the mirror: its ``local_maintenance`` read over HTTP by the monitor,
  or the ``maintenance`` key of its newest report (`pushwire.maintenance`). Of the mirror's
  own two, the one seen last counts: a notice removed (``clam-clientsync maintenance
  --cancel``: a 404, a report whose ``maintenance`` is null) ends its window. A report of an
  older client, without the key, says nothing; nor does a notice that is none (garbage, too
  large, a symlink the web server refuses: kept as a problem, shown), nor another status (a
  503 of a web server in maintenance).
- A window longer than ``[monitor] maintenance_max_days`` (a week) is ignored, and so is one
  past its end.
- A window is in effect from `lead` seconds before its start until its end (`lead_s`: one
  monitor pass, which must act on it, plus the pools' TTL as the servers hold it, so that no
  resolver hands out the mirror when the window starts). While in effect the mirror is out of
  the rotation (`syncd.dns.gate`), its state changes mail nobody (`syncd.monitor.run`), it
  does not count in the outage guard's share (`syncd.monitor.outage`), and the page, status.json
  and the metrics show ``maintenance`` with the reason and the end. It is still pushed to and
  checked.
- After the window nothing is special: the mirror comes back into the rotation only as any
  mirror does (its checks fresh again, its report and an HTTP check serving the release).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pushwire.maintenance import (
    DAY,
    MAX_REASON,
    Notice,
    NoticeError,
    from_json,
    in_effect,
    parse_notice,
)
from syncd.text import clean

INVENTORY, HTTP, REPORT = "inventory", "http", "report"
READ_MAX_S = 366 * DAY  # a notice is read up to this long; `window_in_effect` bounds it


@dataclass(frozen=True)
class Window:
    starts: float  # unix seconds
    ends: float
    reason: str  # cleaned
    origin: str  # INVENTORY, HTTP or REPORT

    @property
    def notice(self) -> Notice:
        return Notice(self.starts, self.ends, self.reason)


@dataclass(frozen=True)
class Sighting:
    """What the mirror last said of maintenance through one channel at `at`: a window, or
    none (None), or a notice that is no notice (`problem`, cleaned; no window then)."""

    origin: str
    at: float
    window: Window | None
    problem: str | None = None


def from_notice(notice: Notice, origin: str) -> Window:
    return Window(notice.starts, notice.ends, clean(notice.reason, MAX_REASON), origin)


def http_sighting(status: int, body: bytes, at: float) -> Sighting | None:
    """Given the answer to ``GET /local_maintenance`` (read bounded; status 0: refused before
    its body was read, the reason as the body), return what it says: a 404 or 410 says no
    window, a 200 the notice or why it is none; any other status (a 503 of a web server in
    maintenance, say) nothing: what was seen before holds."""
    if status in (404, 410):
        return Sighting(HTTP, at, None)
    if status == 0:  # refused before it was read: the reason is the body
        why = body.decode("utf-8", "replace")
        return Sighting(HTTP, at, None, clean(f"/local_maintenance {why}", 300))
    if status != 200:
        return None
    try:
        return Sighting(HTTP, at, from_notice(parse_notice(body, max_s=READ_MAX_S), HTTP))
    except NoticeError as err:
        return Sighting(HTTP, at, None, clean(f"/local_maintenance: {err}", 300))


def report_sighting(report: Mapping[str, Any] | None, at: float) -> Sighting | None:
    """Given a mirror's report (cleaned JSON), return what its ``maintenance`` says; None when
    it has no such key (an older client)."""
    if not isinstance(report, Mapping) or "maintenance" not in report:
        return None
    value = report["maintenance"]
    if value is None:
        return Sighting(REPORT, at, None)
    try:
        return Sighting(REPORT, at, from_notice(from_json(value, max_s=READ_MAX_S), REPORT))
    except NoticeError as err:
        return Sighting(REPORT, at, None, clean(f"the report's maintenance: {err}", 300))


def lead_s(interval_s: float, pool_ttl: float, held_ttl: float = 0.0) -> float:
    """How long before its start a window takes the mirror out of the rotation: the pass that
    acts may come up to one monitor interval late, and resolvers keep the pool's records for
    their TTL (the configured one, or a longer one the servers still hold)."""
    return interval_s + max(pool_ttl, held_ttl)


def window_in_effect(
    team: Window | None,
    sightings: Sequence[Sighting],
    now: float,
    *,
    lead: float,
    max_s: float,
) -> Window | None:
    """Given the inventory's window and the mirror's own sightings, return the window in
    effect at `now` (the one that ends last when both are), or None."""
    said = [s for s in sightings if s.problem is None]  # a notice that is none: not a word
    own = max(said, key=lambda s: s.at).window if said else None
    on = [
        w
        for w in (team, own)
        if w is not None and w.ends - w.starts <= max_s and in_effect(w.notice, now, lead)
    ]
    return max(on, key=lambda w: w.ends, default=None)


def windows_in_effect(
    team: Mapping[str, Window],
    sightings: Mapping[str, Sequence[Sighting]],
    names: Sequence[str],
    now: float,
    *,
    lead: float,
    max_s: float,
) -> dict[str, Window]:
    """`window_in_effect` for each mirror of `names` that has one."""
    out = {}
    for name in names:
        w = window_in_effect(team.get(name), sightings.get(name, ()), now, lead=lead, max_s=max_s)
        if w is not None:
            out[name] = w
    return out


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def describe(w: Window, now: float) -> str:
    """One line for the page, the gate and the logs."""
    said = "announced by mail" if w.origin == INVENTORY else "announced by its admin"
    when = (
        f"until {_when(w.ends)}"
        if now >= w.starts
        else f"from {_when(w.starts)} until {_when(w.ends)}"
    )
    return clean(f"maintenance {when} ({said}): {w.reason}")
