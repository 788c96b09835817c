"""The status site: overview, mirror pages with history plots, status.json and its contract,
and every string from a mirror or the inventory escaped (in HTML and in SVG)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.dns.gate import gate_json
from syncd.dns.update import DnsUpdate
from syncd.statuspage.site import (
    SCHEMA,
    page_name,
    render_mirror,
    render_overview,
    render_site,
    state_spans,
    status_json,
)
from syncd.statuspage.svgplot import Series, nice_ceiling, relative, time_plot
from syncd.text import clean
from tests.release.sample import HOSTILE_MIRROR, sample_releases
from tests.statuspage.sitedata import DAY, HOSTILE, HOUR, NOW, hostile_mirror, sample_site

SCHEMA_FILE = Path(__file__).parents[2] / "docs" / "status.schema.json"


class _Dom(HTMLParser):
    """What a browser would build: elements with their attributes, and the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []
        self.rows: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append([])
        if tag == "td" and self.rows:
            self.rows[-1].append("")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.stack:
            while self.stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if "td" in self.stack and self.rows and self.rows[-1]:
            self.rows[-1][-1] += data


def dom(page: str) -> _Dom:
    d = _Dom()
    d.feed(page)
    d.close()
    return d


def assert_inert(page: str) -> None:
    """No script, no event handler, no javascript: link, nothing loaded from elsewhere."""
    d = dom(page)
    names = {t for t, _ in d.tags}
    assert "script" not in names and "iframe" not in names and "img" not in names
    for tag, attrs in d.tags:
        for key, value in attrs.items():
            assert not key.startswith("on"), (tag, key, value)
            if key in ("href", "src", "xlink:href", "action"):
                assert value is not None
                local = value.startswith(("mirrors/", "../", "status.json"))
                assert local or value.startswith(("http://", "https://")), (tag, value)
                assert ":" not in value or not local, (tag, value)
    # the only svg elements are the plots' own (an injected <svg onload> would add one)
    assert all(attrs.get("class") == "plot" for tag, attrs in d.tags if tag == "svg")


def test_overview_orders_by_score_links_each_mirror_and_explains_the_score() -> None:
    site = sample_site()
    page = render_overview(site)
    d = dom(page)
    names = [r[0] for r in d.rows if r and r[0].endswith((".org", ".edu", ".net", ".com"))]
    assert names == [
        "clamav.mirror.example.org",
        "a-rather-long-mirror-name-for-a-narrow-phone.university.example.edu",
        "old.example.net",
        "retired.example.com",
    ]
    hrefs = [a["href"] for t, a in d.tags if t == "a"]
    for m in site.mirrors:
        assert page_name(m.status.name) in hrefs
    assert "status.json" in hrefs
    text = " ".join(d.text)
    # current release per database, and the gate's state with what holds it back
    assert "daily" in text and "28034" in text and "bytecode" in text and "339" in text
    assert "closed" in text
    assert "2 of 4 mirrors serve the release (50% < 90%)" in text
    assert "Held back by" in text
    assert "Lower is better" in text
    assert_inert(page)


def test_overview_without_dns_says_there_is_no_gate() -> None:
    page = render_overview(replace(sample_site(), gate=None))
    assert "Not configured: without [dns] in syncd.toml" in page


def test_mirror_page_has_history_per_family_publish_runs_and_changes() -> None:
    site = sample_site()
    good = site.mirrors[0]
    page = render_mirror(site, good)
    d = dom(page)
    svgs = [a for t, a in d.tags if t == "svg"]
    assert len(svgs) == 4  # delay and freshness, over 7 and over 30 days
    titles = " ".join(d.text)
    assert "Delay of clamav.mirror.example.org, last 7 days" in titles
    assert "Freshness of clamav.mirror.example.org, last 30 days" in titles
    # both families, in the table and in the plots' titles
    fam_rows = [r for r in d.rows if r and r[0] in ("IPv4", "IPv6")]
    assert [r[0] for r in fam_rows] == ["IPv4", "IPv6"]
    assert "IPv6: unreachable from -9.0 d to -8.5 d" in titles
    # the time axis reads relative to now
    assert "-7 d" in titles and "-30 d" in titles and "now" in titles
    # publish outcomes per run, newest first
    run_rows = [r for r in d.rows if r and r[0].startswith("r00")]
    assert len(run_rows) == 12 and run_rows[0][0] == "r0000-release"
    assert "serves daily 28033 instead of daily 28034" in titles
    # the admin's name, never the address
    assert "Jane Doe" in titles and "jane@example.org" not in page
    assert_inert(page)


def test_mirrors_that_show_the_same_score_are_listed_by_name() -> None:
    """Scores 1.234 (zz) and 1.231 (aa) both read 1.23: aa comes first, and the page says lower
    is better. (Proven to fail before the fix: ordered by the unrounded score, zz came first.)"""
    site = sample_site()
    twins = [
        replace(site.mirrors[0], status=replace(site.mirrors[0].status, name=n, score=v))
        for n, v in (("zz.example.org", 1.234), ("aa.example.org", 1.231))
    ]
    page = render_overview(replace(site, mirrors=tuple(twins)))
    rows = [r[0] for r in dom(page).rows if r and r[0].endswith(".org")]
    assert rows == ["aa.example.org", "zz.example.org"]
    assert "Lower is better; equal scores in name order" in page


def test_pages_depend_on_now_only() -> None:
    site = sample_site()
    assert render_site(site) == render_site(sample_site())
    later = replace(site, now=site.now + DAY)
    assert render_overview(later) != render_overview(site)


def test_time_plot_breaks_lines_at_failed_checks_and_drops_points_outside() -> None:
    svg = time_plot(
        [
            Series(
                "IPv4",
                [
                    (NOW - 10 * DAY, 5 * HOUR),  # outside the window
                    (NOW - 3 * HOUR, HOUR),
                    (NOW - 2 * HOUR, 2 * HOUR),
                    (NOW - HOUR, None),
                    (NOW - 0.5 * HOUR, 3 * HOUR),
                ],
            )
        ],
        start=NOW - 7 * DAY,
        now=NOW,
        title="Delay",
    )
    assert svg.count("<polyline") == 1 and svg.count("<circle") == 1
    assert svg.count('stroke="#c0392b"') == 1  # the failed check's mark
    assert "3 samples" in svg and "axis 0 to 5 h" in svg
    assert nice_ceiling(0.3) == 0.5 and nice_ceiling(3.0) == 5.0 and nice_ceiling(26) == 50.0
    assert relative(NOW - 90 * 60, NOW) == "-1.5 h" and relative(NOW - 3 * DAY, NOW) == "-3.0 d"


def _y_labels(svg: str) -> list[str]:
    return re.findall(r'text-anchor="end">([^<]*)</text>', svg.split("<desc")[1])


def _point_ys(svg: str) -> list[float]:
    ys = re.findall(r'<circle cx="[0-9.]+" cy="([0-9.]+)"', svg)
    return [float(y) for y in ys]


@pytest.mark.parametrize("delay_s", [0.0, 1.8, 30.0, 600.0])
def test_a_fresh_mirror_lies_at_the_bottom_of_a_readable_axis(delay_s: float) -> None:
    """A mirror checked seconds after its timestamp was written: the axis still reaches an hour,
    its labels differ from each other, and the point lies at the bottom. (Proven to fail before
    the fix: the axis was scaled to the largest value, so a 1.8 s delay was drawn at the top and
    every label read 0.)"""
    svg = time_plot(
        [Series("IPv4", [(NOW - HOUR, delay_s)])], start=NOW - 7 * DAY, now=NOW, title="Delay"
    )
    labels = [label for label in _y_labels(svg) if label != "now"]
    assert len(labels) == len(set(labels)) >= 3, labels
    assert labels[0] == "0" and labels[-1] == "1", labels
    bottom = 170 - 34  # height - BOTTOM: the zero line
    (y,) = _point_ys(svg)
    assert bottom - y <= 0.2 * (bottom - 10), (y, svg)


@given(st.floats(min_value=0.0, max_value=1e7, allow_nan=False))
def test_y_labels_are_distinct_for_any_delay(delay_s: float) -> None:
    """Whatever the largest delay, no two y-axis labels read the same."""
    svg = time_plot(
        [Series("IPv4", [(NOW - HOUR, delay_s)])], start=NOW - 7 * DAY, now=NOW, title="Delay"
    )
    labels = [label for label in _y_labels(svg) if label != "now"]
    assert len(labels) == len(set(labels)), labels


def test_state_spans_follow_the_transitions_to_now() -> None:
    spans = state_spans(
        [(NOW - 40 * DAY, "unknown", "fresh"), (NOW - DAY, "fresh", "old")], "old", NOW
    )
    assert [(s.start, s.end, s.state) for s in spans] == [
        (NOW - 40 * DAY, NOW - DAY, "fresh"),
        (NOW - DAY, NOW, "old"),
    ]
    assert state_spans([], "fresh", NOW) == ()


def test_page_names_are_safe_and_distinct_for_any_name() -> None:
    assert page_name("clamav.example.org") == "mirrors/clamav.example.org.html"
    names = ["../../etc/passwd", "a/b", "a_b", "..", "", "<x>", "é.example", HOSTILE]
    pages = [page_name(n) for n in names]
    assert len(set(pages)) == len(pages)
    for p in pages:
        stem = p.removeprefix("mirrors/").removesuffix(".html")
        assert stem and "/" not in stem and not stem.startswith(".")
        assert all(c.isascii() and (c.isalnum() or c in "._-") for c in stem)


# status.json: the contract


def _schema() -> dict:  # type: ignore[type-arg]
    return json.loads(SCHEMA_FILE.read_text())


def test_status_json_validates_against_the_schema_in_the_repo() -> None:
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for site in (sample_site(hostile_mirror()), replace(sample_site(), gate=None)):
        doc = json.loads(render_site(site)["status.json"])
        jsonschema.Draft202012Validator(schema).validate(doc)
        assert doc["schema"] == SCHEMA == 1
    with_releases = replace(sample_site(hostile_mirror()), releases=sample_releases())
    doc = json.loads(render_site(with_releases)["status.json"])
    jsonschema.Draft202012Validator(schema).validate(doc)
    assert len(doc["releases"]) == 30 and doc["releases"][0]["missing"] == [clean(HOSTILE_MIRROR)]
    doc = status_json(sample_site())
    assert doc["releases"] == []
    assert doc["score"]["lower_is_better"] is True
    good = doc["mirrors"][0]
    assert good["name"] == "clamav.mirror.example.org"
    assert [f["family"] for f in good["families"]] == ["IPv4", "IPv6"]
    assert good["families"][0]["windows"]["30d"]["checks"] == 30 * 24
    assert good["page"] == "mirrors/clamav.mirror.example.org.html"
    assert doc["gate"]["held_back_by"][1] == "old.example.net"


def test_the_gate_reads_the_same_in_status_json_and_in_the_dns_json() -> None:
    """One rendering of the verdict (`syncd.dns.gate.gate_json`): status.json's keys, in
    ``syncd dns --json`` and ``syncd publish --json`` too."""
    site = sample_site()
    assert site.gate is not None
    update = DnsUpdate(site.gate, [], sent=False, dry_run=True, error=None)
    assert update.to_json()["gate"] == status_json(site)["gate"] == gate_json(site.gate)
    assert set(gate_json(site.gate)) == SCHEMA_1_FIELDS["gate"]


def test_the_overview_charts_the_last_releases() -> None:
    releases = sample_releases()
    site = replace(sample_site(), releases=releases)
    page = render_overview(site)
    assert "<h2>Releases</h2>" in page
    chart = page[page.index("<svg", page.index("<h2>Releases</h2>")) :]
    chart = chart[: chart.index("</svg>") + 6]
    assert "Propagation of the last 30 releases" in chart
    # t50, t90 and t100 lines; the newest release never reached 100 %: a mark, the line breaks
    assert chart.count("<polyline") == 3
    assert chart.count('y1="10" x2=') == 1
    assert "\x1b" not in page and "\u202e" not in page and "<script>" not in page
    assert "&lt;script&gt;" in page  # the missing mirror's name, escaped
    assert "<h2>Releases</h2>" not in render_overview(sample_site())
    assert all("<h2>Releases</h2>" not in render_mirror(site, m) for m in site.mirrors)


# Every field of schema 1. A field may be added (here and in the schema); one that disappears
# from the document or from the schema's required lists fails this test: that is schema 2.
SCHEMA_1_FIELDS = {
    "": {"schema", "generated_at", "release", "gate", "score", "states", "mirrors"},
    "release": {"versions", "released_at"},
    "gate": {"open", "share", "required_share", "reason", "held_back_by"},
    "score": {"window_days", "lower_is_better", "explanation"},
    "mirror": {
        "name", "country", "page", "state", "since", "age_s", "served", "completion_24h",
        "completion_7d", "mean_delay_7d_s", "score", "last_push", "reason", "families",
        "publish_runs",
    },
    "family": {"family", "state", "since", "last_check_at", "last_check_ok", "age_s", "windows"},
    "figures": {"checks", "completion", "mean_delay_s", "stddev_delay_s", "score"},
    "run": {"run_id", "kind", "started_at", "finished_at", "outcome", "attempts", "error"},
}  # fmt: skip


def test_no_field_of_schema_1_disappears() -> None:
    schema = _schema()
    required = {
        "": set(schema["required"]),
        "release": set(schema["properties"]["release"]["required"]),
        "gate": set(schema["properties"]["gate"]["anyOf"][1]["required"]),
        "score": set(schema["properties"]["score"]["required"]),
        **{k: set(schema["$defs"][k]["required"]) for k in ("mirror", "family", "figures", "run")},
    }
    for where, fields in SCHEMA_1_FIELDS.items():
        assert fields <= required[where], f"{where or 'top'}: {fields - required[where]} dropped"
    doc = status_json(sample_site())
    seen = {
        "": set(doc),
        "release": set(doc["release"]),
        "gate": set(doc["gate"]),
        "score": set(doc["score"]),
        "mirror": set(doc["mirrors"][0]),
        "family": set(doc["mirrors"][0]["families"][0]),
        "figures": set(doc["mirrors"][0]["families"][0]["windows"]["7d"]),
        "run": set(doc["mirrors"][0]["publish_runs"][0]),
    }
    for where, fields in SCHEMA_1_FIELDS.items():
        assert fields <= seen[where], f"{where or 'top'}: {fields - seen[where]} missing"


# hostile strings


def test_every_string_from_a_mirror_or_the_inventory_is_escaped() -> None:
    site = sample_site(hostile_mirror())
    evil = site.mirrors[-1]
    files = render_site(site)
    overview, page = files["index.html"], files[page_name(evil.status.name)]
    for html_text in (overview, page):
        assert_inert(html_text)
        assert "<script" not in html_text
        assert "</svg><svg" not in html_text
    # the strings are all there, as text: escaped, not dropped
    text = " ".join(dom(page).text)
    assert f"evil{HOSTILE}" in text  # the heading and the plots' titles
    assert f"Delay of evil{HOSTILE}, last 7 days" in text  # an SVG <title>
    assert f"IPv4{HOSTILE}" in text  # an SVG label and a family row
    assert f"</title></svg>{HOSTILE}" in text  # the last error
    assert f"run{HOSTILE}" in text and f"3 failed checks in a row: {HOSTILE}" in text
    # a javascript: URL from the inventory is shown, never linked
    assert "javascript:alert(document.cookie)//http://x" in text
    assert not any(
        (a.get("href") or "").lower().startswith("javascript") for t, a in dom(page).tags
    )
    # attribute values stay inside their quotes
    hrefs = [a["href"] for t, a in dom(overview).tags if t == "a"]
    assert page_name(evil.status.name) in hrefs
    # and the JSON twin carries them verbatim
    doc = json.loads(files["status.json"])
    assert any(m["name"] == f"evil{HOSTILE}" for m in doc["mirrors"])
