"""What people read about the mirrors: a static HTML status page and Prometheus metrics.

Pure: one :class:`MirrorStatus` row per mirror in, text out. Every value that came from a
mirror or an operator is escaped; the page has no script and loads nothing from elsewhere.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from syncd.core.freshness import State


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


def _ts(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value / 3600:.1f} h"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _order(row: MirrorStatus) -> tuple[bool, float, str]:
    return (row.score is None, row.score or 0.0, row.name)


def render_html(rows: Sequence[MirrorStatus], release: dict[str, int], now: float) -> str:
    """Return the status page, mirrors ordered by score (best first)."""
    counts = {s.value: sum(r.state == s.value for r in rows) for s in State}
    head = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no mirrors"
    current = ", ".join(f"{db} {v}" for db, v in sorted(release.items()))
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>ClamAV mirror status</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:left}"
        ".fresh{color:#186a1d}.lagging,.old{color:#9a6700}.unreachable,.removed{color:#b3261e}"
        "</style></head><body>",
        "<h1>ClamAV mirror status</h1>",
        f"<p>Current release: {html.escape(current)}. Mirrors: {html.escape(head)}. "
        f"Updated {_ts(now)}.</p>",
        "<table><thead><tr><th>Mirror</th><th>Country</th><th>State</th><th>Since</th>"
        "<th>Age</th><th>Serves</th><th>Checks ok 24 h</th><th>Checks ok 7 d</th>"
        "<th>Mean delay 7 d</th><th>Score</th><th>Last push</th><th>Why</th></tr></thead><tbody>",
    ]
    for r in sorted(rows, key=_order):
        served = ", ".join(f"{db} {v}" for db, v in sorted(r.served.items())) or "-"
        cells = [
            r.name,
            r.country,
            r.state,
            _ts(r.since),
            _hours(r.age_s),
            served,
            _pct(r.completion_24h),
            _pct(r.completion_7d),
            _hours(r.mean_delay_7d_s),
            "-" if r.score is None else f"{r.score:.2f}",
            r.last_push or "-",
            r.reason,
        ]
        tds = "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
        lines.append(f'<tr class="{html.escape(r.state)}">{tds}</tr>')
    lines += ["</tbody></table>", "</body></html>", ""]
    return "\n".join(lines)


_LABEL_ESCAPE = re.compile(r'[\\"\n]')


def _label(value: str) -> str:
    return _LABEL_ESCAPE.sub(lambda m: {"\\": "\\\\", '"': '\\"', "\n": "\\n"}[m.group(0)], value)


def render_metrics(rows: Sequence[MirrorStatus], now: float) -> str:
    """Return Prometheus text format for node_exporter's textfile collector."""
    out = [
        "# HELP pushsync_mirror_age_seconds Age of the mirror's served timestamp file.",
        "# TYPE pushsync_mirror_age_seconds gauge",
    ]
    for r in rows:
        if r.age_s is not None:
            out.append(f'pushsync_mirror_age_seconds{{mirror="{_label(r.name)}"}} {r.age_s:.0f}')
    out += [
        "# HELP pushsync_mirror_state 1 for the mirror's current freshness state.",
        "# TYPE pushsync_mirror_state gauge",
    ]
    for r in rows:
        out.append(
            f'pushsync_mirror_state{{mirror="{_label(r.name)}",state="{_label(r.state)}"}} 1'
        )
    out += [
        "# HELP pushsync_mirror_served_version Database version the mirror serves.",
        "# TYPE pushsync_mirror_served_version gauge",
    ]
    for r in rows:
        for db, v in sorted(r.served.items()):
            labels = f'mirror="{_label(r.name)}",database="{_label(db)}"'
            out.append(f"pushsync_mirror_served_version{{{labels}}} {v}")
    out += [
        "# HELP pushsync_mirror_last_push_ok 1 when the mirror's last publish ended ok.",
        "# TYPE pushsync_mirror_last_push_ok gauge",
    ]
    for r in rows:
        if r.last_push is not None:
            ok = int(r.last_push == "ok")
            out.append(f'pushsync_mirror_last_push_ok{{mirror="{_label(r.name)}"}} {ok}')
    out += [
        "# HELP pushsync_monitor_last_run_timestamp_seconds When the monitor last ran.",
        "# TYPE pushsync_monitor_last_run_timestamp_seconds gauge",
        f"pushsync_monitor_last_run_timestamp_seconds {now:.0f}",
        "",
    ]
    return "\n".join(out)
