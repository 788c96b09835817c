"""The report's ``traffic`` as syncd keeps it: read tolerantly (a key missing or of the wrong
type is 0), every count clamped to what a mirror can plausibly serve in one report, so that a
hostile mirror's huge numbers neither crash syncd nor overflow SQLite (whose integers stop at
2**63 - 1, and whose SUM raises past that: sums here are floats). Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = ("cvd", "cdiff", "sign", "other")  # pushwire.report.Traffic
STATUSES = ("2xx", "304", "3xx", "4xx", "5xx", "other")
COUNT_MAX = 10**12  # requests (or lines) in one report, at most
BYTES_MAX = 1 << 50  # bytes in one report, at most (a PiB)
CLIENTS_MAX = 16
_CLIENT_RE = re.compile(r"(?:other|0\.[0-9]{1,6}|[1-9][0-9]{0,5})\Z")


def _count(value: Any, cap: int = COUNT_MAX) -> int:
    """A count from outside: a non-negative int (not a bool), clamped to `cap`; else 0."""
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return min(max(value, 0), cap)


@dataclass(frozen=True)
class Figures:
    """One report's traffic, clamped."""

    requests: int
    bytes: int
    excluded: int
    malformed: int
    kinds: dict[str, tuple[int, int]]  # kind -> (requests, bytes)
    statuses: dict[str, int]
    clients: dict[str, int]  # freshclam major version -> requests
    complete: bool


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def from_report(report: Mapping[str, Any]) -> Figures | None:
    """Given a report's cleaned JSON, return its traffic; None when it carries none."""
    raw = report.get("traffic")
    if not isinstance(raw, Mapping):
        return None
    kinds_raw = _mapping(raw.get("kinds"))
    kinds = {
        k: (
            _count(_mapping(kinds_raw.get(k)).get("requests")),
            _count(_mapping(kinds_raw.get(k)).get("bytes"), BYTES_MAX),
        )
        for k in KINDS
    }
    statuses_raw = _mapping(raw.get("statuses"))
    clients: dict[str, int] = {}
    for key, value in _mapping(raw.get("clients")).items():
        name = key if isinstance(key, str) and _CLIENT_RE.match(key) else "other"
        if name not in clients and len(clients) >= CLIENTS_MAX - 1:
            name = "other"
        clients[name] = min(clients.get(name, 0) + _count(value), COUNT_MAX)
    return Figures(
        requests=_count(raw.get("requests")),
        bytes=_count(raw.get("bytes"), BYTES_MAX),
        excluded=_count(raw.get("excluded")),
        malformed=_count(raw.get("malformed")),
        kinds=kinds,
        statuses={s: _count(statuses_raw.get(s)) for s in STATUSES},
        clients=dict(sorted(clients.items())),
        complete=raw.get("complete") is not False,
    )


@dataclass(frozen=True)
class Totals:
    """Traffic summed over a span (floats: a sum of clamped counts never overflows)."""

    requests: float = 0.0
    bytes: float = 0.0
    kinds: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    statuses: Mapping[str, float] = field(default_factory=dict)
    clients: Mapping[str, float] = field(default_factory=dict)
    reports: int = 0

    def client_shares(self) -> dict[str, float]:
        """Each freshclam version's share of the requests (0..1)."""
        total = sum(self.clients.values())
        return {k: v / total for k, v in sorted(self.clients.items())} if total else {}


def total(figures: Iterable[Figures]) -> Totals:
    """Sum reports' figures."""
    requests = size = 0.0
    kinds = {k: [0.0, 0.0] for k in KINDS}
    statuses = dict.fromkeys(STATUSES, 0.0)
    clients: dict[str, float] = {}
    n = 0
    for f in figures:
        n += 1
        requests += f.requests
        size += f.bytes
        for k, (r, b) in f.kinds.items():
            kinds[k][0] += r
            kinds[k][1] += b
        for s, c in f.statuses.items():
            statuses[s] += c
        for v, c in f.clients.items():
            clients[v] = clients.get(v, 0.0) + c
    return Totals(
        requests,
        size,
        {k: (r, b) for k, (r, b) in kinds.items()},
        statuses,
        dict(sorted(clients.items())),
        n,
    )


DAY = 86_400.0


def daily(
    rows: Iterable[tuple[float, Figures]], now: float, days: int = 30
) -> list[tuple[float, float, float]]:
    """Given (recorded at, figures) rows, return (day start, requests, bytes) for each of the
    last `days` UTC days up to `now`, oldest first, days without a report at 0."""
    today = (now // DAY) * DAY
    first = today - (days - 1) * DAY
    out = {first + i * DAY: [0.0, 0.0] for i in range(days)}
    for at, f in rows:
        day = (at // DAY) * DAY
        if day in out:
            out[day][0] += f.requests
            out[day][1] += f.bytes
    return [(d, r, b) for d, (r, b) in sorted(out.items())]
