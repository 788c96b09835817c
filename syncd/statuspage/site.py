"""The status site: an overview, a page per mirror, and their JSON twin ``status.json``.

Pure: a :class:`Site` (what the record says, and `now`) in, file names and text out. The pages
are static and self-contained: inline CSS and SVG, no script, nothing loaded from elsewhere
(a Content-Security-Policy says so to the browser too). Every string that came from a mirror
(errors, reasons) or from the inventory (names, hosts, URLs, admins) is cleaned
(`syncd.text.clean`) and escaped, in the pages and in ``status.json``; a URL becomes a link
only when it is http or https.

``status.json`` is versioned by its ``schema`` field (:data:`SCHEMA`); its fields are described by
``docs/status.schema.json``. Adding a field keeps the version; removing or changing one bumps it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

from syncd.dns.gate import GateVerdict, gate_json
from syncd.monitor.certs import CertStatus
from syncd.monitor.freshness import Check, Figures, State, figures
from syncd.monitor.snapshot import Change
from syncd.release.announcement import span, when
from syncd.release.propagation import Propagation
from syncd.statuspage.certs import cert_cell, cert_json, cert_section
from syncd.statuspage.rows import MirrorStatus
from syncd.statuspage.svgplot import (
    DAY,
    STATE_COLOURS,
    UNKNOWN_COLOUR,
    Band,
    ReleasePoint,
    Series,
    ago,
    esc,
    iso,
    release_plot,
    state_plot,
    time_plot,
)
from syncd.statuspage.traffic import (
    TrafficView,
    mirror_section,
    overview_section,
    view_json,
)
from syncd.text import clean_tree

SCHEMA = 1
WINDOWS = (("7d", 7 * DAY), ("30d", 30 * DAY))

SCORE_TEXT = (
    "The score orders the mirrors: over the last 7 days, (mean delay + its standard deviation, "
    "in hours) divided by the share of good checks. Lower is better. The delay is how old the "
    "mirror's timestamp file was when checked; the heartbeat renews it every 3 hours, so a "
    "mirror in step scores about 1 to 3, a steady but late one more, and one that often "
    "fails its checks much more (its delay is divided by a small share). A mirror without a "
    "good check in 7 days has no score and is listed last."
)
DELAY_TEXT = (
    "Delay: how old the mirror's timestamp file was at each check, per address family. "
    "A red tick on the time axis is a failed check (no answer, a redirect, garbage)."
)
FRESHNESS_TEXT = "Freshness: the monitor's verdict over time, per address family."


@dataclass(frozen=True)
class Span:
    start: float
    end: float
    state: str


def state_spans(
    transitions: Sequence[tuple[float, str, str]], state: str, now: float
) -> tuple[Span, ...]:
    """Given a family's transitions as (at, old, new), oldest first, and its `state` now,
    return the states it went through, up to `now`. Before the first transition it was in
    that transition's old state (``unknown`` for a new mirror)."""
    spans: list[Span] = []
    if not transitions:
        return ()
    for (at, _, new), nxt in zip(transitions, [*transitions[1:], None], strict=True):
        end = nxt[0] if nxt is not None else now
        spans.append(Span(at, end, new))
    # the last transition's new state is the current one (a record can be ahead of it only
    # when transitions were lost: then trust the record)
    if spans and spans[-1].state != state:
        spans[-1] = Span(spans[-1].start, now, state)
    return tuple(spans)


@dataclass(frozen=True)
class FamilyView:
    """A mirror on one address family: its record and the last 30 days of checks."""

    family: str  # "IPv4", "IPv6", or "any" (the name did not resolve)
    state: str
    since: float | None
    checks: tuple[Check, ...] = ()  # oldest first
    spans: tuple[Span, ...] = ()  # states over the last 30 days

    @property
    def last_check(self) -> Check | None:
        return self.checks[-1] if self.checks else None

    @property
    def last_good(self) -> Check | None:
        good = [c for c in self.checks if c.ok and c.timestamp is not None]
        return good[-1] if good else None


@dataclass(frozen=True)
class RunView:
    """The mirror's part of one publish run."""

    run_id: str
    kind: str  # "release" or "heartbeat"
    started_at: float
    finished_at: float | None
    outcome: str | None  # None: the run never finished this mirror
    attempts: int
    error: str | None


@dataclass(frozen=True)
class MirrorView:
    status: MirrorStatus
    host: str = ""
    http: str = ""
    admins: tuple[str, ...] = ()
    families: tuple[FamilyView, ...] = ()
    runs: tuple[RunView, ...] = ()  # newest first
    changes: tuple[Change, ...] = ()  # newest first
    cert: CertStatus | None = None  # its https certificate (None: no https URL)
    traffic: TrafficView | None = None  # reported in the last 30 days
    local_stats: tuple[str, str] | None = None  # /local_stats/ (verdict, detail), if checked


@dataclass(frozen=True)
class Site:
    now: float
    release: Mapping[str, int]
    released_at: float | None
    gate: GateVerdict | None  # None: no [dns], no gate
    mirrors: tuple[MirrorView, ...] = field(default=())
    suspect: str | None = None  # why the monitor suspects its own checks (DNS left alone)
    releases: tuple[Propagation, ...] = ()  # the last releases' propagation, newest first
    traffic_countries: Mapping[str, TrafficView] = field(default_factory=dict)


# formatting


def _when(t: float | None, now: float) -> str:
    """A <time> element reading relative to `now`, its absolute time as a tooltip."""
    if t is None:
        return "-"
    return f'<time datetime="{iso(t)}" title="{when(t)}">{esc(ago(t, now))}</time>'


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value / 3600:.1f} h"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _versions(v: Mapping[str, int]) -> str:
    return ", ".join(f"{db} {n}" for db, n in sorted(v.items())) or "-"


def _state(state: str, label: str | None = None) -> str:
    """A state, coloured, never wrapped (class ``st``: the browser test measures these)."""
    colour = STATE_COLOURS.get(state, UNKNOWN_COLOUR)
    text = esc(label if label is not None else state)
    return f'<span class="st" style="--c:{colour}" title="{text}">{text}</span>'


def _maintenance_badge(s: MirrorStatus) -> str:
    return " " + _state("maintenance") if s.maintenance is not None else ""


def _maintenance_text(s: MirrorStatus) -> str:
    """The maintenance in effect, in one sentence ('' when none)."""
    m = s.maintenance
    if m is None:
        return ""
    who = "its admin" if m.by == "admin" else "the team"
    return (
        f"In maintenance until {when(m.ends)} (from {when(m.starts)}, announced by {who}): "
        f"{m.reason}. Out of the DNS rotation, no alert mails; back once it serves the "
        "current release."
    )


def _link(url: str) -> str:
    """An inventory URL: a link when it is http(s), else text."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return esc(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return f'<a href="{esc(url)}" rel="nofollow noopener">{esc(url)}</a>'
    return esc(url)


def admin_name(admin: str) -> str:
    """What the page shows of an admin: the display name, never the address (no harvesting)."""
    name, address = parseaddr(admin)
    return name or ("(address only)" if address else admin)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def page_name(mirror: str) -> str:
    """The mirror page's path, relative to the overview: a safe file name for any name (a name
    that needs changing gets a digest of the original, so two never meet)."""
    safe = _UNSAFE.sub("_", mirror).lstrip(".")[:80]
    if safe != mirror or not safe:
        digest = hashlib.sha256(mirror.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        safe = f"{safe or 'mirror'}-{digest}"
    return f"mirrors/{safe}.html"


def _order(m: MirrorView) -> tuple[bool, float, str]:
    """Lower score first, by the score as shown (two decimals), so that mirrors that read the
    same are listed by name; mirrors without a score last."""
    score = m.status.score
    return (score is None, round(score or 0.0, 2), m.status.name)


# the pages

CSS = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
margin:0 auto;padding:1rem;max-width:1400px;color:#1d1d1d;background:#fff;
overflow-wrap:break-word}
.wide{overflow-x:auto}
.meta,p{overflow-wrap:anywhere}
td.why{min-width:12rem}
h1{font-size:1.5rem;margin:.2rem 0 .6rem}h2{font-size:1.15rem;margin:1.4rem 0 .5rem}
a{color:#1f5fa8}
.meta{color:#555;margin:.2rem 0 1rem}
.warn{border-left:.45em solid #b3261e;background:#fdf0ef;padding:.4rem .7rem;border-radius:3px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(16rem,1fr));gap:.8rem}
.card{border:1px solid #ddd;border-radius:6px;padding:.6rem .8rem}
.card h2{margin:0 0 .4rem;font-size:1rem}
.card p{margin:.3rem 0}
.st{white-space:nowrap;display:inline-block;line-height:1.45;padding:0 .45em;
border-radius:3px;border-left:.45em solid var(--c,#b8b8b8);background:#f3f3f3;
max-width:100%;overflow:hidden;text-overflow:ellipsis;vertical-align:bottom}
table{border-collapse:collapse;width:100%}
th,td{padding:.3rem .5rem;border-bottom:1px solid #e3e3e3;text-align:left;vertical-align:top}
th{background:#f6f6f6;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.time{white-space:nowrap}
.plot{width:100%;height:auto;max-width:680px;display:block;margin:.3rem 0 1rem}
.legend span{margin-right:.6rem}
.note{color:#444;max-width:60rem}
@media (max-width:720px){
body{padding:.6rem}
table.rows thead{display:none}
table.rows,table.rows tbody,table.rows tr,table.rows td{display:block;width:100%}
table.rows tr{border:1px solid #ddd;border-radius:6px;margin:0 0 .6rem;padding:.3rem .5rem}
table.rows td{border:0;padding:.15rem 0;display:flex;gap:.6rem;justify-content:space-between;
text-align:right;white-space:normal;min-width:0;overflow-wrap:anywhere}
table.rows td.num{text-align:right}
table.rows td::before{content:attr(data-label);font-weight:600;text-align:left;
flex:0 0 auto;color:#444}
table.rows td.first{font-size:1.05rem;font-weight:600;justify-content:flex-start}
table.rows td.first::before{content:none}
}
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"


def _head(title: str) -> list[str]:
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{esc(title)}</title>",
        f"<style>{CSS}</style></head><body>",
    ]


def _table(
    cls: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[tuple[str, str]]],
    row_classes: Sequence[str] = (),
) -> str:
    """A table whose cells are (class, HTML already escaped); the header names each cell on a
    phone (``data-label``), where every row becomes a card. `row_classes`: a class per row."""
    out = [f'<div class="wide"><table class="rows {cls}"><thead><tr>']
    out += [f"<th>{esc(h)}</th>" for h in headers]
    out.append("</tr></thead><tbody>")
    for i, row in enumerate(rows):
        out.append(f'<tr class="{esc(row_classes[i])}">' if i < len(row_classes) else "<tr>")
        for (klass, cell), h in zip(row, headers, strict=True):
            attr = f' class="{klass}"' if klass else ""
            out.append(f'<td{attr} data-label="{esc(h)}">{cell}</td>')
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _legend() -> str:
    items = "".join(_state(s.value) for s in State if s is not State.UNKNOWN)
    return f'<p class="legend">States, best first: {items}</p>'


def _gate_card(site: Site) -> str:
    g = site.gate
    if g is None:
        return (
            '<div class="card"><h2>Release gate</h2><p>Not configured: without [dns] in '
            "syncd.toml no TXT record is announced.</p></div>"
        )
    state = _state("fresh" if g.reached else "lagging", "open" if g.reached else "closed")
    out = [
        f'<div class="card"><h2>Release gate</h2><p>{state} {esc(g.reason)}.</p>',
        f"<p>It opens at {g.required:.0%} of the active mirrors and a mirror in every "
        "country; then the TXT record announces the release.</p>",
    ]
    if g.laggards and not g.reached:
        links = ", ".join(f'<a href="{esc(page_name(n))}">{esc(n)}</a>' for n in g.laggards)
        out.append(f"<p>Held back by: {links}</p>")
    out.append("</div>")
    return "".join(out)


def _end(out: list[str]) -> str:
    """A page's lines, closed by what the score means."""
    out += [
        "<h2>What the score means</h2>",
        f'<p class="note">{esc(SCORE_TEXT)}</p>',
        "</body></html>",
        "",
    ]
    return "\n".join(out)


def render_overview(site: Site) -> str:
    now = site.now
    mirrors = sorted(site.mirrors, key=_order)
    counts: dict[str, int] = {}
    for m in mirrors:
        counts[m.status.state] = counts.get(m.status.state, 0) + 1
    tally = " ".join(f"{_state(s)}&nbsp;{n}" for s, n in counts.items()) or "no mirrors"
    released = (
        f"<p>Released {_when(site.released_at, now)} ({when(site.released_at)}).</p>"
        if site.released_at
        else ""
    )
    versions = "".join(
        f"<tr><th>{esc(db)}</th><td class='num'>{v}</td></tr>"
        for db, v in sorted(site.release.items())
    )
    out = _head("ClamAV mirror status")
    out += [
        "<h1>ClamAV mirror status</h1>",
        f'<p class="meta">Updated {when(now)}. Machine-readable: '
        '<a href="status.json">status.json</a>.</p>',
        *(
            [
                '<p class="warn"><strong>The monitor suspects itself:</strong> '
                f"{esc(site.suspect)}.</p>"
            ]
            if site.suspect
            else []
        ),
        '<div class="cards">',
        f'<div class="card"><h2>Current release</h2><table>{versions}</table>{released}</div>',
        _gate_card(site),
        f'<div class="card"><h2>Mirrors</h2><p>{tally}</p></div>',
        "</div>",
        "<h2>Mirrors, best score first</h2>",
        '<p class="note">Lower is better; equal scores in name order; mirrors without a score '
        "last (what the score means: below the table).</p>",
    ]
    headers = [
        "Mirror",
        "Country",
        "State",
        "Families",
        "Age",
        "Serves",
        "Good checks 24 h / 7 d",
        "Delay 7 d",
        "Score",
        "Last push",
        "HTTPS",
        "Why",
    ]
    rows = []
    for m in mirrors:
        s = m.status
        fams = " ".join(_state(f.state, f"{f.family} {f.state}") for f in m.families) or "-"
        rows.append(
            [
                ("first", f'<a href="{esc(page_name(s.name))}">{esc(s.name)}</a>'),
                ("text", esc(s.country)),
                ("", _state(s.state) + _maintenance_badge(s)),
                ("", fams),
                ("num", _hours(s.age_s)),
                ("text", esc(_versions(s.served))),
                ("num", f"{_pct(s.completion_24h)} / {_pct(s.completion_7d)}"),
                ("num", _hours(s.mean_delay_7d_s)),
                ("num", _score(s.score)),
                ("text", esc(s.last_push or "-")),
                ("", cert_cell(m.cert, now)),
                ("text why", esc(_maintenance_text(s) or s.reason or "-")),
            ]
        )
    out.append(_legend())
    out.append(_table("mirrors", headers, rows, [m.status.state for m in mirrors]))
    out += overview_section(site.traffic_countries, now, _table)
    out += _releases(site)
    return _end(out)


def _family_rows(m: MirrorView, now: float) -> list[list[tuple[str, str]]]:
    rows = []
    for f in m.families:
        week = figures(f.checks, now - 7 * DAY)
        month = figures(f.checks, now - 30 * DAY)
        last, good = f.last_check, f.last_good
        age = (now - good.timestamp) if good is not None and good.timestamp else None
        error = next((c.error for c in reversed(f.checks) if not c.ok and c.error), None)
        rows.append(
            [
                ("first", esc(f.family)),
                ("", _state(f.state)),
                ("time", _when(f.since, now)),
                ("time", _when(last.at if last else None, now)),
                ("num", _hours(age)),
                ("num", _pct(week.completion if week.checks else None)),
                ("num", _pct(month.completion if month.checks else None)),
                ("num", _hours(week.mean_delay_s)),
                ("num", _hours(month.mean_delay_s)),
                ("num", _score(week.score)),
                ("text", esc(error or "-")),
            ]
        )
    return rows


def _plots(m: MirrorView, now: float) -> list[str]:
    out = ["<h2>Delay and freshness</h2>", f'<p class="note">{esc(DELAY_TEXT)} ']
    out.append(f"{esc(FRESHNESS_TEXT)}</p>")
    legend = "".join(
        f"<span>{'—' if i == 0 else '- -' if i == 1 else '···'} {esc(f.family)}</span>"
        for i, f in enumerate(m.families)
    )
    if legend:
        out.append(f'<p class="legend">Lines: {legend}</p>')
    for key, window in WINDOWS:
        start = now - window
        days = int(window / DAY)
        series = [
            Series(
                f.family,
                [
                    (c.at, c.at - c.timestamp if c.ok and c.timestamp is not None else None)
                    for c in f.checks
                ],
            )
            for f in m.families
        ]
        bands = [
            Band(f.family, [(sp.start, sp.end, sp.state) for sp in f.spans]) for f in m.families
        ]
        out.append(f"<h3>Last {days} days</h3>")
        out.append(
            time_plot(
                series,
                start=start,
                now=now,
                title=f"Delay of {m.status.name}, last {days} days",
                ident=f"delay-{key}",
            )
        )
        out.append(
            state_plot(
                bands,
                start=start,
                now=now,
                title=f"Freshness of {m.status.name}, last {days} days",
                ident=f"fresh-{key}",
            )
        )
    out.append(_legend())
    return out


def render_mirror(site: Site, m: MirrorView) -> str:
    now, s = site.now, m.status
    out = _head(f"{s.name}: ClamAV mirror status")
    facts = [
        f"<p>{_state(s.state)} since {_when(s.since, now)}; country {esc(s.country)}; "
        f"serves {esc(_versions(s.served))} (current: {esc(_versions(site.release))}).</p>",
    ]
    if s.maintenance is not None:
        facts.append(f'<p class="warn">{esc(_maintenance_text(s))}</p>')
    if s.reason:
        facts.append(f"<p>Last change: {esc(s.reason)}</p>")
    details = []
    if m.host:
        details.append(f"ssh host {esc(m.host)}")
    if m.http:
        details.append(f"checked at {_link(m.http)}")
    if m.admins:
        details.append("admin " + ", ".join(esc(admin_name(a)) for a in m.admins))
    if details:
        facts.append(f"<p>{'; '.join(details)}.</p>")
    out += [
        '<p class="meta"><a href="../index.html">All mirrors</a> · '
        f'updated {when(now)} · <a href="../status.json">status.json</a></p>',
        f"<h1>{esc(s.name)}</h1>",
        *facts,
        "<h2>Per address family</h2>",
    ]
    fam_headers = [
        "Family",
        "State",
        "Since",
        "Last check",
        "Age",
        "Good 7 d",
        "Good 30 d",
        "Delay 7 d",
        "Delay 30 d",
        "Score 7 d",
        "Last error",
    ]
    if m.families:
        out.append(_table("families", fam_headers, _family_rows(m, now)))
        out += _plots(m, now)
    else:
        out.append("<p>Not checked: the monitor checks enabled mirrors with an http URL.</p>")
    out += cert_section(m.cert, now)
    out.append("<h2>Publish runs</h2>")
    if m.runs:
        run_rows = [
            [
                ("first", esc(r.run_id)),
                ("", esc(r.kind)),
                ("time", _when(r.started_at, now)),
                (
                    "",
                    _state("fresh" if r.outcome == "ok" else "unreachable", r.outcome)
                    if r.outcome
                    else _state("unknown", "unfinished"),
                ),
                ("num", str(r.attempts)),
                ("text", esc(r.error or "-")),
            ]
            for r in m.runs
        ]
        out.append(
            _table("runs", ["Run", "Kind", "Started", "Outcome", "Attempts", "Error"], run_rows)
        )
    else:
        out.append("<p>No publish run has reached this mirror yet.</p>")
    out.append("<h2>Changes</h2>")
    if m.changes:
        change_rows = [
            [
                ("first", _when(c.at, now)),
                ("", esc(c.family)),
                ("", f"{_state(c.old)} → {_state(c.new)}"),
                ("text", esc(c.reason)),
            ]
            for c in m.changes
        ]
        out.append(_table("changes", ["When", "Family", "Change", "Why"], change_rows))
    else:
        out.append("<p>No change recorded.</p>")
    out += mirror_section(s.name, m.traffic, m.local_stats, now)
    return _end(out)


# the JSON twin


def _figures(f: Figures) -> dict[str, Any]:
    return {
        "checks": f.checks,
        "completion": round(f.completion, 4) if f.checks else None,
        "mean_delay_s": None if f.mean_delay_s is None else round(f.mean_delay_s, 1),
        "stddev_delay_s": None if f.stddev_delay_s is None else round(f.stddev_delay_s, 1),
        "score": None if f.score is None else round(f.score, 4),
    }


def _round(v: float | None, digits: int = 1) -> float | None:
    return None if v is None else round(v, digits)


RELEASES_TEXT = (
    "How long each release took, from the start of its publish, until 50, 90 and 100 % of the "
    "active mirrors served it (proven over HTTP by the publish, or seen by the monitor). A mark "
    "at the top of a release's column: that share was not reached."
)
CHARTED = (50, 90, 100)


def _releases(site: Site) -> list[str]:
    """The releases section of the overview: the chart of the last releases, oldest left, and
    a table of the newest."""
    if not site.releases:
        return []
    oldest_first = list(reversed(site.releases))
    points = [
        ReleasePoint(str(p.daily), [p.from_start.get(q) for q in CHARTED]) for p in oldest_first
    ]
    out = [
        "<h2>Releases</h2>",
        f'<p class="note">{esc(RELEASES_TEXT)}</p>',
        '<p class="legend">Lines: <span>— t50</span><span>- - t90</span><span>··· t100</span></p>',
        release_plot(
            points,
            [f"t{q}" for q in CHARTED],
            title=f"Propagation of the last {len(points)} releases",
        ),
    ]
    headers = ["Daily", "Publish began", "Announced", "Served", "t50", "t90", "t100", "Missing"]
    rows = []
    for p in site.releases[:10]:
        q = p.from_start
        rows.append(
            [
                ("first", esc(p.daily)),
                ("text", esc(when(p.started_at))),
                ("num", esc(span(p.announce_delay_s))),
                ("num", f"{q.served}/{q.total}"),
                *(("num", esc(span(q.get(k)))) for k in CHARTED),
                ("text why", esc(", ".join(p.missing[:10]) or "-")),
            ]
        )
    out.append(_table("releases", headers, rows))
    return out


def status_json(site: Site) -> dict[str, Any]:
    """The ``status.json`` document (schema :data:`SCHEMA`, see docs/status.schema.json)."""
    now = site.now
    g = site.gate
    mirrors = []
    for m in sorted(site.mirrors, key=_order):
        s = m.status
        families = []
        for f in m.families:
            good, last = f.last_good, f.last_check
            families.append(
                {
                    "family": f.family,
                    "state": f.state,
                    "since": iso(f.since),
                    "last_check_at": iso(last.at if last else None),
                    "last_check_ok": last.ok if last else None,
                    "age_s": _round(now - good.timestamp)
                    if good is not None and good.timestamp
                    else None,
                    "windows": {k: _figures(figures(f.checks, now - w)) for k, w in WINDOWS},
                }
            )
        mirrors.append(
            {
                "name": s.name,
                "country": s.country,
                "page": page_name(s.name),
                "state": s.state,
                "since": iso(s.since),
                "age_s": _round(s.age_s),
                "served": dict(sorted(s.served.items())),
                "completion_24h": _round(s.completion_24h, 4),
                "completion_7d": _round(s.completion_7d, 4),
                "mean_delay_7d_s": _round(s.mean_delay_7d_s),
                "score": _round(s.score, 4),
                "last_push": s.last_push,
                "reason": s.reason,
                "maintenance": s.maintenance_json(),
                "families": families,
                "certificate": cert_json(m.cert, now),
                "publish_runs": [
                    {
                        "run_id": r.run_id,
                        "kind": r.kind,
                        "started_at": iso(r.started_at),
                        "finished_at": iso(r.finished_at),
                        "outcome": r.outcome,
                        "attempts": r.attempts,
                        "error": r.error,
                    }
                    for r in m.runs
                ],
                "traffic": view_json(m.traffic, iso),
                "local_stats": None
                if m.local_stats is None
                else {"verdict": m.local_stats[0], "detail": m.local_stats[1]},
            }
        )
    return {
        "schema": SCHEMA,
        "generated_at": iso(now),
        "release": {
            "versions": dict(sorted(site.release.items())),
            "released_at": iso(site.released_at),
        },
        "gate": None if g is None else gate_json(g),
        "score": {"window_days": 7, "lower_is_better": True, "explanation": SCORE_TEXT},
        "monitor": {"suspects_itself": site.suspect is not None, "reason": site.suspect},
        "states": [s.value for s in State],
        "mirrors": mirrors,
        "releases": [_release_json(p) for p in site.releases],
        "traffic_countries": {c: view_json(v, iso) for c, v in site.traffic_countries.items()},
    }


def _release_json(p: Propagation) -> dict[str, Any]:
    doc = p.to_json()
    for key in ("built_at", "started_at", "announced_at"):
        doc[key] = iso(doc[key])
    return doc


def render_site(site: Site) -> dict[str, str]:
    """Every file of the site, by path relative to the overview's directory."""
    files = {"index.html": render_overview(site)}
    for m in site.mirrors:
        files[page_name(m.status.name)] = render_mirror(site, m)
    files["status.json"] = json.dumps(clean_tree(status_json(site)), indent=1) + "\n"
    return files
