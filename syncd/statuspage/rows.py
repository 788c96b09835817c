"""What people read about the mirrors: one :class:`MirrorStatus` row per mirror, from which
the pages (:mod:`syncd.statuspage.site`) and the metrics (:mod:`syncd.statuspage.metrics`) are made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from syncd.statuspage.svgplot import iso


@dataclass(frozen=True)
class MirrorStatus:
    name: str
    country: str
    state: str  # a freshness State value, or "disabled" / "pending"
    since: float | None
    age_s: float | None  # now - served timestamp
    served: dict[str, int]
    completion_24h: float | None
    completion_7d: float | None
    mean_delay_7d_s: float | None
    score: float | None
    last_push: str | None  # last publish outcome
    reason: str = ""
    maintenance: Maintenance | None = None  # a maintenance window in effect

    def maintenance_json(self) -> dict[str, Any] | None:
        """The mirror's ``maintenance`` in status.json and ``syncd monitor --json``."""
        m = self.maintenance
        if m is None:
            return None
        return {"from": iso(m.starts), "until": iso(m.ends), "reason": m.reason, "by": m.by}


@dataclass(frozen=True)
class Maintenance:
    """A maintenance window in effect (`syncd.monitor.maintenance`), as people read it."""

    starts: float
    ends: float
    reason: str  # cleaned
    by: str  # "admin" (its local_maintenance or report) or "team" (the inventory)
