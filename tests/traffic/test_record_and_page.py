"""Traffic on syncd's side: what a mirror's report says it served, recorded by a real publish
(fake clients behind real sshd), once per report, clamped whatever a hostile mirror claims;
then shown per mirror and per country on the page, in status.json (valid against the schema
in the repo) and as metrics (valid for promtool)."""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.harness.cvd import DEFAULT_VERSIONS
from devtools.harness.documents import report
from syncd.files import read_inventory
from syncd.monitor.run import read_snapshot
from syncd.sqlite import open_db
from syncd.statuspage import build
from syncd.statuspage.metrics import render_metrics
from syncd.statuspage.site import render_site
from syncd.traffic.figures import BYTES_MAX, CLIENTS_MAX, COUNT_MAX, from_report
from syncd.traffic.store import TrafficStore, record_report
from tests.publish import fakes
from tests.publish.fakes import MirrorFactory
from tests.publish.fixtures import Syncd, by_name
from tests.statuspage.test_metrics import promtool

ROOT = Path(__file__).resolve().parent.parent.parent
SCHEMA = json.loads((ROOT / "docs" / "status.schema.json").read_text())
EXPECT = [f"--expect={db}={v}" for db, v in DEFAULT_VERSIONS.items()]
DAY = 86_400.0


def traffic(requests: int = 10, size: int = 5000, **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "lines": requests + 1,
        "requests": requests,
        "bytes": size,
        "excluded": 1,
        "malformed": 0,
        "kinds": {
            "cvd": {"requests": requests - 2, "bytes": size - 100},
            "cdiff": {"requests": 2, "bytes": 100},
            "sign": {"requests": 0, "bytes": 0},
            "other": {"requests": 0, "bytes": 0},
        },
        "statuses": {"2xx": requests - 1, "304": 1, "3xx": 0, "4xx": 0, "5xx": 0, "other": 0},
        "clients": {"1": requests - 3, "0.103": 3},
        "since": None,
        "complete": True,
    }
    doc.update(over)
    return doc


HOSTILE = traffic(
    requests=10**30,
    bytes=-5,
    excluded=True,
    malformed=1.5e300,
    kinds={"cvd": {"requests": "9" * 50, "bytes": 2**70}, "other": [1, 2], "x" * 500: {}},
    statuses={"2xx": 2**63, "4xx": -(2**63)},
    clients={**{f"9{n}": 10**20 for n in range(100)}, "<script>": 5, "1": 7},
)


def add_behaviour(monkeypatch: pytest.MonkeyPatch, name: str, doc: dict[str, Any]) -> None:
    text = report(traffic=doc)
    monkeypatch.setitem(fakes.BEHAVIOURS, name, f"cat <<'__R__'\n{text}\n__R__\nexit 0\n")


def test_a_publish_records_each_reports_traffic_once_and_clamped(
    fake_mirror: MirrorFactory, syncd: Syncd, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_behaviour(monkeypatch, "busy", traffic())
    add_behaviour(monkeypatch, "hostile", HOSTILE)
    busy, hostile = fake_mirror("busy.test", "busy"), fake_mirror("hostile.test", "hostile")
    plain = fake_mirror("plain.test", "ok")  # a client without ACCESS_LOG=
    syncd.write("".join(m.inventory_block() for m in (busy, hostile, plain)))
    for _ in range(2):  # the same reports again (the fakes' start time is fixed): no new row
        code, doc, err = syncd.publish(*EXPECT)
        assert code == 0, err
        assert {n: m["outcome"] for n, m in by_name(doc).items()} == dict.fromkeys(
            ("busy.test", "hostile.test", "plain.test"), "ok"
        )
    conn = open_db(syncd.state)
    rows = TrafficStore(conn).reports(0.0)
    assert sorted(rows) == ["busy.test", "hostile.test"]
    assert [len(r) for r in rows.values()] == [1, 1]
    (_, b), (_, h) = rows["busy.test"][0], rows["hostile.test"][0]
    assert (b.requests, b.bytes, b.clients) == (10, 5000, {"0.103": 3, "1": 7})
    assert (h.requests, h.bytes, h.excluded, h.malformed) == (COUNT_MAX, 0, 0, 0)
    assert h.kinds["cvd"] == (0, BYTES_MAX) and h.statuses["2xx"] == COUNT_MAX
    assert h.statuses["4xx"] == 0 and len(h.clients) == CLIENTS_MAX
    assert h.clients["other"] == COUNT_MAX and "<script>" not in h.clients
    assert max(conn.execute("SELECT max(requests), max(bytes) FROM traffic_reports").fetchone())
    conn.close()


def test_the_page_status_json_and_metrics_show_traffic_per_mirror_and_country(
    fake_mirror: MirrorFactory, syncd: Syncd, tmp_path: Path
) -> None:
    a, b, c = (fake_mirror(f"{n}.test", "ok") for n in "abc")
    syncd.write(
        a.inventory_block(country="PL")
        + b.inventory_block(country="PL")
        + c.inventory_block(country="DE")
    )
    now = 1_800_000_000.0  # a pinned clock: the rows are laid around it (noqa: date)
    conn = open_db(syncd.state)
    for day in range(40):  # 40 days: the page shows the last 30
        at = now - day * DAY
        record_report(conn, "a.test", at, {"started_at": f"a{day}", "traffic": traffic()})
        record_report(conn, "b.test", at, {"started_at": f"b{day}", "traffic": traffic(20)})
    # a hostile mirror's numbers, every day, many times a day: sums never overflow
    for n in range(3000):
        record_report(conn, "c.test", now - n * 800, {"started_at": f"c{n}", "traffic": HOSTILE})
    inv = read_inventory(syncd.inventory)
    snap = read_snapshot(conn, ["a.test", "b.test", "c.test"], now)
    conn.close()
    rows = build.status_rows({m.name: m.country for m in inv.mirrors}, snap, {})
    site = build.site(
        inv, rows, snap, release=_release(), gate_share=None, verdict=None, suspect=None
    )
    files = render_site(site)
    doc = json.loads(files["status.json"])
    jsonschema.validate(doc, SCHEMA)
    by = {m["name"]: m for m in doc["mirrors"]}
    month = by["a.test"]["traffic"]["last_30d"]
    assert (month["requests"], month["bytes"], month["reports"]) == (300, 150_000, 30)
    assert month["client_shares"] == {"0.103": 0.3, "1": 0.7}
    assert len(by["a.test"]["traffic"]["daily"]) == 30
    assert by["a.test"]["traffic"]["last_24h"]["requests"] == 10
    pl = doc["traffic_countries"]["PL"]
    assert (pl["mirrors"], pl["last_30d"]["requests"]) == (2, 900)
    huge = doc["traffic_countries"]["DE"]["last_30d"]
    assert huge["requests"] > 10**15 and huge["bytes"] == 0
    assert all(math.isfinite(x) for x in (huge["requests"], huge["bytes"]))
    page = files["mirrors/a.test.html"]
    assert "Bytes served by a.test per day" in page and "<svg" in page
    assert "Bytes served per country per day" in files["index.html"]
    assert "<script>" not in files["index.html"] + page

    metrics = render_metrics(
        build.metrics(
            rows,
            snap,
            release=_release(),
            checked={"a.test", "b.test", "c.test"},
            gate_share=None,
            verdict=None,
            suspect=None,
        )
    )
    assert 'pushsync_mirror_traffic_requests{mirror="a.test",window="30d"} 300' in metrics
    assert 'pushsync_country_traffic_requests{country="PL",window="24h"} 30' in metrics
    assert 'pushsync_mirror_traffic_client_share{mirror="a.test",version="1"} 0.7' in metrics
    prom = tmp_path / "pushsync.prom"
    prom.write_text(metrics)
    done = subprocess.run(
        [promtool(), "check", "metrics"], input=metrics, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _release() -> Any:
    from syncd.monitor.freshness import Release

    return Release(dict(DEFAULT_VERSIONS), None)


json_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=30,
)
traffic_like = st.fixed_dictionaries(
    {},
    optional={
        "requests": json_value,
        "bytes": json_value,
        "kinds": st.dictionaries(
            st.sampled_from(["cvd", "cdiff", "x"]),
            st.dictionaries(st.sampled_from(["requests", "bytes"]), json_value),
        )
        | json_value,
        "statuses": st.dictionaries(st.sampled_from(["2xx", "304", "9"]), json_value) | json_value,
        "clients": st.dictionaries(st.text(max_size=8), json_value) | json_value,
        "complete": json_value,
    },
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(json_value, traffic_like))
def test_any_traffic_value_is_read_clamped_and_recorded(value: Any) -> None:
    figures = from_report({"traffic": value})
    if figures is None:
        assert not isinstance(value, dict)
        return
    counts = [figures.requests, figures.excluded, figures.malformed]
    counts += [*figures.statuses.values(), *figures.clients.values()]
    counts += [r for r, _ in figures.kinds.values()]
    assert all(0 <= n <= COUNT_MAX for n in counts)
    assert all(
        0 <= b <= BYTES_MAX for b in [figures.bytes, *(b for _, b in figures.kinds.values())]
    )
    assert len(figures.clients) <= CLIENTS_MAX
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    conn.execute("CREATE TABLE schema_versions (component TEXT PRIMARY KEY, version INTEGER)")
    store = TrafficStore(conn)
    assert store.record("m", 1.0, "t", figures) and not store.record("m", 2.0, "t", figures)
    assert store.reports(0.0)["m"][0][1] == figures


def test_the_traffic_sections_read_well_on_a_laptop_and_a_phone(tmp_path: Path) -> None:
    """The per-country table becomes cards on a phone; neither it nor the charts overflow."""
    browser = shutil.which("chromium-headless-shell")
    assert browser, "Chromium's headless shell is missing: run scripts/setup"
    from dataclasses import replace

    from syncd.statuspage.site import page_name
    from syncd.statuspage.traffic import country_views, mirror_view
    from syncd.traffic.figures import Figures
    from tests.statuspage.sitedata import NOW, sample_site
    from tests.statuspage.test_statuspage_browser import WIDTHS, _measure, _write

    site = sample_site()
    figures = from_report({"traffic": traffic(41250, 9_013_822_464)})
    assert isinstance(figures, Figures)
    view = mirror_view([(NOW - d * DAY, figures) for d in range(30)], NOW)
    assert view is not None
    first = replace(site.mirrors[0], traffic=view, local_stats=("protected", "HTTP 401"))
    mirrors = (first, *site.mirrors[1:])
    countries = country_views(
        {m.status.name: view for m in mirrors}, {m.status.name: m.status.country for m in mirrors}
    )
    site = replace(site, mirrors=mirrors, traffic_countries=countries)
    files = render_site(site)
    assert "Bytes served per country per day" in files["index.html"]
    _write(tmp_path / "site", files)
    for page in ("index.html", page_name(first.status.name)):
        for width in WIDTHS:
            m = _measure(browser, tmp_path, tmp_path / "site" / page, width)
            assert m["scroll"] <= m["inner"], f"{page} at {width} px overflows: {m}"
