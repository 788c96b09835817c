"""What people read about the mirrors: one :class:`MirrorStatus` row per mirror, and the
Prometheus metrics made of those rows (the HTML pages: :mod:`syncd.core.statussite`).

Pure: rows in, text out. Every label value that came from a mirror or an operator is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
