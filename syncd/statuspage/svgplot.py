"""Inline SVG plots for the status page: a value over time per series, and states over time.

Pure: series in, SVG text out. Times are unix seconds; the axis reads relative to `now`
("-7 d" ... "now"), so a page renders the same for the same data and `now`. Every label and
title is escaped (it may carry a mirror's or a family's name); colours come from fixed tables,
never from the data.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from syncd.text import clean

DAY = 86_400.0
HOUR = 3_600.0

# Series colours and dash patterns: told apart by shape as well as by colour.
PALETTE = (("#1f5fa8", ""), ("#b35900", "6 3"), ("#5b3f99", "2 2"), ("#2a7a3a", "8 2 2 2"))

# Colours of the freshness states (the page's legend uses the same table).
STATE_COLOURS: Mapping[str, str] = {
    "fresh": "#2e8b3a",
    "lagging": "#d9a400",
    "old": "#e07000",
    "unreachable": "#c0392b",
    "removed": "#7b1d1d",
    "unknown": "#b8b8b8",
    "maintenance": "#3a6ea5",  # not a state: a window announced (shown beside the state)
}
UNKNOWN_COLOUR = "#b8b8b8"

WIDTH = 640
LEFT, RIGHT, TOP, BOTTOM = 52, 14, 10, 34
FONT = 15  # in the plot's own units: 640 of them fill the page's width


def esc(value: object) -> str:
    """Text or attribute value, cleaned (`syncd.text.clean`, uncut) and escaped for HTML
    and for SVG inside it."""
    return html.escape(clean(str(value), None), quote=True)


def iso(t: float | None) -> str | None:
    """`t` as ``status.json`` writes a time: ISO 8601 in UTC, to the second (None for None)."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ago(t: float, now: float) -> str:
    """`t` as prose relative to `now`: "just now", "40 min ago", "5.0 h ago", "in 2.0 h"."""
    r = relative(t, now)
    if r == "now":
        return "just now"
    return f"in {r[1:]}" if r.startswith("+") else f"{r[1:]} ago"


def relative(t: float, now: float) -> str:
    """`t` relative to `now`: "now", "-40 min", "-5.0 h", "-3.2 d" (or "+..." ahead)."""
    d = t - now
    sign = "-" if d < 0 else "+"
    a = abs(d)
    if a < 60:
        return "now"
    if a < HOUR:
        return f"{sign}{a / 60:.0f} min"
    if a < 2 * DAY:
        return f"{sign}{a / HOUR:.1f} h"
    return f"{sign}{a / DAY:.1f} d"


def _lines(runs: Sequence[Sequence[str]], colour: str, dash_attr: str, radius: float) -> list[str]:
    """Each run of "x,y" points as a line; a run of one point as a dot of `radius`."""
    out = []
    for pts in runs:
        if len(pts) == 1:
            cx, cy = pts[0].split(",")
            out.append(f'<circle cx="{cx}" cy="{cy}" r="{radius}" fill="{colour}"/>')
        elif pts:
            out.append(
                f'<polyline points="{" ".join(pts)}" fill="none" stroke="{colour}" '
                f'stroke-width="1.5"{dash_attr}/>'
            )
    return out


@dataclass(frozen=True)
class Series:
    """One line: (time, value) points, oldest first; a value None is a failed sample (drawn as
    a mark on the time axis, and the line breaks there)."""

    label: str
    points: Sequence[tuple[float, float | None]]


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `value` (> 0)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * power + 1e-12:
            return step * power
    return 10 * power


def _value_axis(top: float, y0: float, unit: str) -> list[str]:
    """Open the plot's text group: the value axis's grid lines and labels from 0 to `top`,
    and its `unit`."""
    out = [f'<g font-size="{FONT}" fill="#444">']
    steps = _divisions(top)
    for k in range(steps + 1):
        v = top * k / steps
        y = y0 - (y0 - TOP) * k / steps
        out.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#e4e4e4"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(v, top / steps)}</text>'
        )
    out.append(
        f'<text x="4" y="{TOP + 5}" text-anchor="start" font-size="{FONT - 2}">{esc(unit)}</text>'
    )
    return out


def _divisions(top: float) -> int:
    """How many grid steps make round values up to `top` (a :func:`nice_ceiling`)."""
    mantissa = top / 10.0 ** math.floor(math.log10(top))
    return 4 if abs(mantissa - 2) < 1e-9 else 5


def _fmt(v: float, step: float = 0.1) -> str:
    """`v` with as many decimals as a grid `step` needs (0.25 needs two), trailing zeros cut."""
    decimals = 0
    while decimals < 6 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-9:
        decimals += 1
    text = f"{v:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _day_ticks(start: float, now: float) -> list[tuple[float, str]]:
    """Ticks: whole days back from `now` (every day up to 10 days, else every 5)."""
    days = (now - start) / DAY
    step = 1 if days <= 10 else 5
    return [(now - k * DAY, f"-{k} d" if k else "now") for k in range(0, int(days) + 1, step)]


def _open(title: str, desc: str, height: int, ident: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'class="plot" role="img" aria-labelledby="{esc(ident)}-t {esc(ident)}-d">',
        f'<title id="{esc(ident)}-t">{esc(title)}</title>',
        f'<desc id="{esc(ident)}-d">{esc(desc)}</desc>',
    ]


def _time_axis(start: float, now: float, y0: float, height: int) -> list[str]:
    span = now - start
    out = []
    for t, label in _day_ticks(start, now):
        x = LEFT + (t - start) / span * (WIDTH - LEFT - RIGHT)
        anchor = "end" if t >= now else "middle"
        out.append(
            f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{y0:.1f}" stroke="#e4e4e4"/>'
            f'<text x="{x:.1f}" y="{height - 8}" text-anchor="{anchor}">{esc(label)}</text>'
        )
    return out


def time_plot(
    series: Sequence[Series],
    *,
    start: float,
    now: float,
    title: str,
    unit: str = "h",
    scale: float = HOUR,
    ident: str = "plot",
    height: int = 170,
    minimum: float = 1.0,
) -> str:
    """A line per series of its values (divided by `scale`, in `unit`) from `start` to `now`.
    Points outside the window are left out. The axis reaches at least `minimum` (in `unit`), so
    values near zero lie at the bottom instead of filling the height."""
    span = max(now - start, 1.0)
    inner_w = WIDTH - LEFT - RIGHT
    y0 = height - BOTTOM
    values = [v / scale for s in series for t, v in s.points if v is not None and start <= t <= now]
    top = nice_ceiling(max([*values, minimum]))
    out = _open(
        title,
        f"{title}, from {relative(start, now)} to now; {len(values)} samples; "
        f"axis 0 to {_fmt(top, top)} {unit}",
        height,
        ident,
    )
    out += _value_axis(top, y0, unit)
    out += _time_axis(start, now, y0, height)
    out.append("</g>")

    def x_of(t: float) -> float:
        return LEFT + (t - start) / span * inner_w

    def y_of(v: float) -> float:
        return y0 - (v / scale) / top * (y0 - TOP)

    for i, s in enumerate(series):
        colour, dash = PALETTE[i % len(PALETTE)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        runs: list[list[str]] = [[]]
        fails: list[float] = []
        for at, value in s.points:
            if not start <= at <= now:
                continue
            if value is None:
                fails.append(at)
                if runs[-1]:
                    runs.append([])
                continue
            runs[-1].append(f"{x_of(at):.1f},{y_of(value):.1f}")
        out.append(f"<g><title>{esc(s.label)}: {esc(title)}</title>")
        out += _lines(runs, colour, dash_attr, radius=2)
        for at in fails:
            out.append(
                f'<line x1="{x_of(at):.1f}" y1="{y0 - 6 - 4 * i}" x2="{x_of(at):.1f}" '
                f'y2="{y0 - 4 * i:.1f}" stroke="#c0392b" stroke-width="1.5"/>'
            )
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


@dataclass(frozen=True)
class Band:
    """One row of a state plot: the states one family went through, as (from, to, state)."""

    label: str
    spans: Sequence[tuple[float, float, str]]


def state_plot(
    bands: Sequence[Band], *, start: float, now: float, title: str, ident: str = "states"
) -> str:
    """A row per band, coloured by state from `start` to `now`; each span says when."""
    row_h, gap = 20, 8
    height = TOP + len(bands) * (row_h + gap) + BOTTOM
    span = max(now - start, 1.0)
    inner_w = WIDTH - LEFT - RIGHT
    y_axis = TOP + len(bands) * (row_h + gap)
    out = _open(title, f"{title}, from {relative(start, now)} to now", height, ident)
    out.append(f'<g font-size="{FONT}" fill="#444">')
    out += _time_axis(start, now, y_axis, height)
    out.append("</g>")
    for i, band in enumerate(bands):
        y = TOP + i * (row_h + gap)
        out.append(
            f'<text x="{LEFT - 6}" y="{y + 14}" text-anchor="end" font-size="{FONT}" fill="#444">'
            f"{esc(band.label)}</text>"
        )
        for begin, end, state in band.spans:
            a, b = max(begin, start), min(end, now)
            if b <= a:
                continue
            x = LEFT + (a - start) / span * inner_w
            w = max((b - a) / span * inner_w, 0.5)
            colour = STATE_COLOURS.get(state, UNKNOWN_COLOUR)
            out.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h}" fill="{colour}">'
                f"<title>{esc(band.label)}: {esc(state)} from {esc(relative(a, now))} "
                f"to {esc(relative(b, now))}</title></rect>"
            )
    out.append("</svg>")
    return "".join(out)


@dataclass(frozen=True)
class ReleasePoint:
    """One release on the release chart: its label (the daily version) and the seconds from
    its publish's start to each share of the mirrors (None: not reached)."""

    label: str
    values: Sequence[float | None]


def release_plot(
    points: Sequence[ReleasePoint],
    labels: Sequence[str],
    *,
    title: str,
    ident: str = "releases",
    height: int = 190,
    minimum: float = 1.0,
) -> str:
    """A line per share (`labels`, such as t50, t90, t100) over the releases, oldest left, in
    minutes (or hours when the largest value is over two hours). A share a release has not
    reached is a mark at the top of its column, and the line breaks there."""
    values = [v for p in points for v in p.values if v is not None]
    big = max(values, default=0.0) > 2 * HOUR
    unit, scale = ("h", HOUR) if big else ("min", 60.0)
    top = nice_ceiling(max([*(v / scale for v in values), minimum]))
    y0 = height - BOTTOM
    inner_w = WIDTH - LEFT - RIGHT
    n = len(points)
    out = _open(
        title,
        f"{title}: {n} releases, oldest left; axis 0 to {_fmt(top, top)} {unit}",
        height,
        ident,
    )
    out += _value_axis(top, y0, unit)

    def x_of(i: int) -> float:
        return LEFT + (i + 0.5) / max(n, 1) * inner_w

    every = max(1, math.ceil(n / 6))  # at most ~6 labels fit under the axis
    for i, p in enumerate(points):
        if i % every == 0 or i == n - 1:
            out.append(
                f'<text x="{x_of(i):.1f}" y="{height - 8}" text-anchor="middle">'
                f"{esc(p.label)}</text>"
            )
    out.append("</g>")
    for j, name in enumerate(labels):
        colour, dash = PALETTE[j % len(PALETTE)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f"<g><title>{esc(name)}</title>")
        run: list[str] = []
        runs = [run]
        for i, p in enumerate(points):
            value = p.values[j] if j < len(p.values) else None
            if value is None:
                out.append(
                    f'<line x1="{x_of(i):.1f}" y1="{TOP}" x2="{x_of(i):.1f}" y2="{TOP + 6 + 4 * j}"'
                    f' stroke="{colour}" stroke-width="1.5"/>'
                )
                run = []
                runs.append(run)
                continue
            y = y0 - (value / scale) / top * (y0 - TOP)
            run.append(f"{x_of(i):.1f},{y:.1f}")
        out += _lines(runs, colour, dash_attr, radius=2.5)
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)
