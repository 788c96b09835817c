"""What people read about the mirrors: one :class:`MirrorStatus` row per mirror, from which
the pages (:mod:`syncd.statuspage.site`) and the metrics (:mod:`syncd.statuspage.metrics`) are made.
"""

from __future__ import annotations

from dataclasses import dataclass


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
