"""Which mirrors a publish pushes to, and in what order. Pure."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from syncd.errors import SyncdError
from syncd.hints import did_you_mean
from syncd.inventory.model import Inventory, Mirror


class PlanError(SyncdError, ValueError):
    """Nothing sensible to push; the message says why."""


def plan(
    inventory: Inventory,
    *,
    only: Collection[str] = (),
    done: Collection[str] = (),
    last_duration: Mapping[str, float] = {},
) -> list[Mirror]:
    """Return the active mirrors to push, skipping those already `done` (a resumed run) and,
    when `only` is given, all others. Slowest first (by their last push), so the long waits
    overlap instead of trailing at the end; ties by name for a stable order."""
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
