"""Traffic on the status site, in status.json and in the metrics: what each mirror reported
serving (``ACCESS_LOG=``: syncd.traffic), per mirror and per country, over the last 24 hours
and 30 days, and each mirror's ``/local_stats/`` verdict. Pure: the snapshot's rows in, views,
HTML, JSON and metric samples out; every figure was clamped when it was read
(syncd.traffic.figures), every sum is a float.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from syncd.statuspage.svgplot import DAY, Series, esc, time_plot
from syncd.traffic.figures import KINDS, STATUSES, Figures, Totals, daily, total
from syncd.traffic.localstats import VERDICTS

HISTORY_DAYS = 30
COUNTRIES_PLOTTED = 4  # the busiest countries get a line each (the palette has four)
TRAFFIC_TEXT = (
    "Traffic: what the mirror's web server logged, as its client counts it from the access "
    "log (ACCESS_LOG= in its clam-clientsync.conf) at each sync, without the monitor's own "
    "ClamAV-MirrorCheck requests. Mirrors without ACCESS_LOG= report none."
)


@dataclass(frozen=True)
class TrafficView:
    """One mirror's (or one country's) reported traffic."""

    days: tuple[tuple[float, float, float], ...]  # (day start, requests, bytes), 30 days
    day: Totals  # the last 24 hours
    month: Totals  # the last 30 days
    last_report_at: float | None
    mirrors: int = 1  # mirrors that reported (a country's)


def mirror_view(rows: Sequence[tuple[float, Figures]], now: float) -> TrafficView | None:
    """The view of one mirror's recorded reports (oldest first) over the last 30 UTC days
    (today's included: the chart's days); None when it reported none in them."""
    first = (now // DAY) * DAY - (HISTORY_DAYS - 1) * DAY
    month = [(at, f) for at, f in rows if first <= at <= now]
    if not month:
        return None
    return TrafficView(
        days=tuple(daily(month, now, HISTORY_DAYS)),
        day=total(f for at, f in month if at > now - DAY),
        month=total(f for _, f in month),
        last_report_at=month[-1][0],
    )


def _add(a: Totals, b: Totals) -> Totals:
    clients = dict(a.clients)
    for k, v in b.clients.items():
        clients[k] = clients.get(k, 0.0) + v
    return Totals(
        a.requests + b.requests,
        a.bytes + b.bytes,
        {
            k: (a.kinds.get(k, (0.0, 0.0))[0] + r, a.kinds.get(k, (0.0, 0.0))[1] + s)
            for k, (r, s) in b.kinds.items()
        },
        {k: a.statuses.get(k, 0.0) + v for k, v in b.statuses.items()},
        dict(sorted(clients.items())),
        a.reports + b.reports,
    )


def country_views(
    views: Mapping[str, TrafficView], countries: Mapping[str, str]
) -> dict[str, TrafficView]:
    """Each country's traffic: its mirrors' (mirror -> view, mirror -> country) summed."""
    out: dict[str, TrafficView] = {}
    for name, v in sorted(views.items()):
        country = countries.get(name, "-")
        have = out.get(country)
        if have is None:
            out[country] = v
            continue
        out[country] = TrafficView(
            tuple(
                (d, r1 + r2, b1 + b2)
                for (d, r1, b1), (_, r2, b2) in zip(have.days, v.days, strict=True)
            ),
            _add(have.day, v.day),
            _add(have.month, v.month),
            max(have.last_report_at or 0.0, v.last_report_at or 0.0) or None,
            have.mirrors + 1,
        )
    return dict(sorted(out.items()))


# formatting


def human_bytes(value: float) -> str:
    """`value` bytes as people read them (1000-based: what a link's bandwidth is sold in)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.0f} B"


def _unit(top: float) -> tuple[str, float]:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if top >= size:
            return unit, size
    return "B", 1.0


def _shares(t: Totals) -> str:
    shares = t.client_shares()
    if not shares:
        return "-"
    return ", ".join(
        f"{'freshclam ' + v if v != 'other' else 'other clients'} {s * 100:.0f} %"
        for v, s in sorted(shares.items(), key=lambda kv: -kv[1])
    )


def plot(series: Sequence[tuple[str, TrafficView]], now: float, title: str, ident: str) -> str:
    """Bytes served per day, a line per (label, view), over the last 30 days."""
    top = max((b for _, v in series for _, _, b in v.days), default=0.0)
    unit, size = _unit(top)
    return time_plot(
        [Series(label, [(d + DAY / 2, b) for d, _, b in v.days]) for label, v in series],
        start=now - HISTORY_DAYS * DAY,
        now=now,
        title=title,
        unit=f"{unit}/day",
        scale=size,
        ident=ident,
    )


def mirror_section(
    name: str, view: TrafficView | None, local: tuple[str, str] | None, now: float
) -> list[str]:
    """The mirror page's traffic section."""
    out = ["<h2>Traffic</h2>", f'<p class="note">{esc(TRAFFIC_TEXT)}</p>']
    if local is not None:
        verdict, detail = local
        out.append(f"<p>/local_stats/: {esc(verdict)}: {esc(detail)}</p>")
    if view is None:
        out.append("<p>No traffic reported in the last 30 days.</p>")
        return out
    m, d = view.month, view.day
    out.append(
        f"<p>Last 24 h: {d.requests:.0f} requests, {esc(human_bytes(d.bytes))}. Last 30 days: "
        f"{m.requests:.0f} requests, {esc(human_bytes(m.bytes))}.</p>"
    )
    per_kind = {k: m.kinds.get(k, (0.0, 0.0)) for k in KINDS}
    kinds = " · ".join(
        f"{esc(k)} {r:.0f} ({esc(human_bytes(b))})" for k, (r, b) in per_kind.items()
    )
    statuses = " · ".join(f"{esc(s)} {m.statuses.get(s, 0.0):.0f}" for s in STATUSES)
    out += [
        f"<p>By file, 30 days: {kinds}.</p>",
        f"<p>By answer, 30 days: {statuses}.</p>",
        f"<p>By client, 30 days: {esc(_shares(m))}.</p>",
        plot([(name, view)], now, f"Bytes served by {name} per day, last 30 days", "traffic"),
    ]
    return out


Table = Callable[[str, Sequence[str], Sequence[Sequence[tuple[str, str]]]], str]


def overview_section(countries: Mapping[str, TrafficView], now: float, table: Table) -> list[str]:
    """The overview's traffic per country: a table (made by the site's `table`: cards on a
    phone), and a line per busiest country."""
    out = ["<h2>Traffic per country, last 30 days</h2>", f'<p class="note">{esc(TRAFFIC_TEXT)}</p>']
    if not countries:
        out.append("<p>No mirror reported traffic in the last 30 days.</p>")
        return out
    headers = [
        "Country",
        "Mirrors reporting",
        "Requests 24 h",
        "Bytes 24 h",
        "Requests 30 d",
        "Bytes 30 d",
        "Clients 30 d",
    ]
    rows = []
    for c, v in countries.items():
        cells = [str(v.mirrors), f"{v.day.requests:.0f}", human_bytes(v.day.bytes)]
        cells += [f"{v.month.requests:.0f}", human_bytes(v.month.bytes)]
        rows.append(
            [("first", esc(c)), *(("num", esc(x)) for x in cells), ("text", esc(_shares(v.month)))]
        )
    out.append(table("traffic", headers, rows))
    busiest = sorted(countries.items(), key=lambda cv: -cv[1].month.bytes)[:COUNTRIES_PLOTTED]
    out.append(
        plot(busiest, now, "Bytes served per country per day, last 30 days", "traffic-countries")
    )
    return out


# status.json


def _totals_json(t: Totals) -> dict[str, Any]:
    return {
        "requests": round(t.requests),
        "bytes": round(t.bytes),
        "kinds": {
            k: {"requests": round(r), "bytes": round(b)} for k, (r, b) in sorted(t.kinds.items())
        },
        "statuses": {k: round(v) for k, v in sorted(t.statuses.items())},
        "client_shares": {k: round(s, 4) for k, s in t.client_shares().items()},
        "reports": t.reports,
    }


def view_json(
    view: TrafficView | None, iso: Callable[[float | None], str | None]
) -> dict[str, Any] | None:
    """A mirror's (or country's) ``traffic`` in status.json (see docs/status.schema.json)."""
    if view is None:
        return None
    return {
        "last_report_at": iso(view.last_report_at),
        "mirrors": view.mirrors,
        "last_24h": _totals_json(view.day),
        "last_30d": _totals_json(view.month),
        "daily": [
            {"day": iso(d), "requests": round(r), "bytes": round(b)} for d, r, b in view.days
        ],
    }


# metrics


Sample = tuple[Mapping[str, str], float]


def metric_families(
    views: Mapping[str, TrafficView],
    countries: Mapping[str, TrafficView],
    local: Mapping[str, tuple[str, str]],
) -> Iterable[tuple[str, str, list[Sample]]]:
    """(name, help, samples) of each traffic metric family."""
    windows = (("24h", "day"), ("30d", "month"))
    mirrors = sorted(views.items())

    def per(attr: str, of: Iterable[tuple[str, TrafficView]], key: str) -> list[Sample]:
        return [
            ({key: n, "window": w}, getattr(getattr(v, span), attr))
            for n, v in of
            for w, span in windows
        ]

    yield (
        "pushsync_mirror_traffic_requests",
        "Requests the mirror reported serving (its access log, without ClamAV-MirrorCheck) "
        "in the window.",
        per("requests", mirrors, "mirror"),
    )
    yield (
        "pushsync_mirror_traffic_bytes",
        "Bytes the mirror reported serving in the window.",
        per("bytes", mirrors, "mirror"),
    )
    yield (
        "pushsync_mirror_traffic_kind_bytes",
        "Bytes the mirror reported serving in the window, per file kind.",
        [
            ({"mirror": n, "window": w, "kind": k}, getattr(v, span).kinds.get(k, (0.0, 0.0))[1])
            for n, v in mirrors
            for w, span in windows
            for k in KINDS
        ],
    )
    yield (
        "pushsync_mirror_traffic_status_requests",
        "Requests the mirror reported in the window, per answer class.",
        [
            ({"mirror": n, "window": w, "status": s}, getattr(v, span).statuses.get(s, 0.0))
            for n, v in mirrors
            for w, span in windows
            for s in STATUSES
        ],
    )
    yield (
        "pushsync_mirror_traffic_client_share",
        "Share of the mirror's requests over 30 days per freshclam major version (0 to 1).",
        [
            ({"mirror": n, "version": ver}, round(s, 4))
            for n, v in mirrors
            for ver, s in v.month.client_shares().items()
        ],
    )
    yield (
        "pushsync_mirror_traffic_last_report_timestamp_seconds",
        "When syncd last recorded a traffic report of the mirror.",
        [({"mirror": n}, round(v.last_report_at)) for n, v in mirrors if v.last_report_at],
    )
    yield (
        "pushsync_country_traffic_requests",
        "Requests the country's mirrors reported serving in the window.",
        per("requests", sorted(countries.items()), "country"),
    )
    yield (
        "pushsync_country_traffic_bytes",
        "Bytes the country's mirrors reported serving in the window.",
        per("bytes", sorted(countries.items()), "country"),
    )
    yield (
        "pushsync_mirror_local_stats",
        "1 for the verdict on the mirror's /local_stats/ asked without credentials (protected,"
        " none, open: a warning, unclear), 0 for every other.",
        [
            ({"mirror": n, "verdict": verdict}, int(found == verdict))
            for n, (found, _) in sorted(local.items())
            for verdict in VERDICTS
        ],
    )
