"""Which mirrors a publish pushes to, and in what order. Pure."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from syncd.errors import SyncdError
from syncd.hints import did_you_mean
from syncd.inventory.model import Inventory, Mirror


class PlanError(SyncdError, ValueError):
    """Nothing sensible to push; the message says why."""


def own_sync_seconds(push_s: float | None, report: object) -> float | None:
    """How long a mirror's own sync took in its last push: its client's ok report's
    ``duration_s`` (what the mirror's rsync, start and verification took), never more than
    `push_s`, the whole push as syncd recorded it (which holds the client's sync, and the
    waits for a slot and a hub besides; a report cannot claim more). None when the report is
    not an ok one or holds no finite, non-negative duration."""
    if not isinstance(report, Mapping) or report.get("status") != "ok":
        return None
    value = report.get("duration_s")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an integer past any float: no figure
        return None
    if not 0 <= seconds < float("inf"):
        return None
    return seconds if push_s is None else min(seconds, push_s)


def order_seconds(last: Mapping[str, tuple[float | None, object]]) -> dict[str, float]:
    """Given mirror -> (its last push's recorded seconds, the client's report it ended with),
    return mirror -> the seconds `plan` orders it by: its own sync time (`own_sync_seconds`),
    or, when its report holds none, the push's recorded time (the order before clients'
    times were read). Mirrors with neither are left out (they go last, by name)."""
    out: dict[str, float] = {}
    for mirror, (push_s, report) in last.items():
        own = own_sync_seconds(push_s, report)
        seconds = own if own is not None else push_s
        if seconds is not None:
            out[mirror] = seconds
    return out


def plan(
    inventory: Inventory,
    *,
    only: Collection[str] = (),
    done: Collection[str] = (),
    last_duration: Mapping[str, float] = {},
) -> list[Mirror]:
    """Return the active mirrors to push, skipping those already `done` (a resumed run) and,
    when `only` is given, all others. Slowest first (by `last_duration`, the seconds of each
    mirror's last sync, `order_seconds`), so the long waits overlap instead of trailing at
    the end; ties by name for a stable order."""
    names = [m.name for m in inventory.mirrors]
    unknown = sorted(set(only) - set(names))
    if unknown:
        hint = did_you_mean(unknown[0], names) if len(unknown) == 1 else ""
        raise PlanError(
            f"not in the inventory: {', '.join(unknown)}: {hint}"
            "see 'syncd mirrors list' for the names"
        )
    chosen = [m for m in inventory.active() if m.name not in done and (not only or m.name in only)]
    return sorted(chosen, key=lambda m: (-last_duration.get(m.name, 0.0), m.name))
