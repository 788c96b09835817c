"""Status page and metrics: escaped, ordered, parseable."""

from __future__ import annotations

from html.parser import HTMLParser

from syncd.core.statuspage import MirrorStatus, render_html, render_metrics

NOW = 1_800_000_000.0


def row(name: str, state: str = "fresh", score: float | None = 1.0, **kw: object) -> MirrorStatus:
    base: dict[str, object] = dict(
        country="PL",
        since=NOW - 3600,
        age_s=1800.0,
        served={"daily": 28034, "main": 62},
        completion_24h=1.0,
        completion_7d=0.95,
        mean_delay_7d_s=1200.0,
        last_push="ok",
    )
    base.update(kw)
    return MirrorStatus(name=name, state=state, score=score, **base)  # type: ignore[arg-type]


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        if tag == "script":
            self.scripts += 1

    def handle_data(self, data: str) -> None:
        if self.rows and self.lasttag == "td":
            self.rows[-1].append(data)


def test_page_orders_by_score_and_escapes_everything() -> None:
    hostile = row(
        "<script>alert(1)</script>",
        state="removed",
        score=None,
        reason='timestamp "49 h" & <b>old</b>',
    )
    page = render_html(
        [row("b.example", score=2.0), hostile, row("a.example", score=0.5)], {"daily": 28034}, NOW
    )
    parser = _Cells()
    parser.feed(page)
    assert parser.scripts == 0
    names = [r[0] for r in parser.rows[1:]]
    assert names == ["a.example", "b.example", "<script>alert(1)</script>"]
    assert "&lt;b&gt;old&lt;/b&gt;" in page
    assert "1 removed" in page and "2 fresh" in page


def test_metrics_are_valid_prometheus_text() -> None:
    text = render_metrics([row('we"ird\\name'), row("x", last_push="timeout", age_s=None)], NOW)
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert 'pushsync_mirror_state{mirror="we\\"ird\\\\name",state="fresh"} 1' in lines
    assert 'pushsync_mirror_last_push_ok{mirror="x"} 0' in lines
    assert 'pushsync_mirror_served_version{mirror="x",database="daily"} 28034' in lines
    assert not any(ln.startswith('pushsync_mirror_age_seconds{mirror="x"}') for ln in lines)
    assert text.endswith("\n")
    for ln in lines:
        _, value = ln.rsplit(" ", 1)
        float(value)
