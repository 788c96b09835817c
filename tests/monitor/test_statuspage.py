"""Metrics: escaped, parseable (the pages: test_statussite.py)."""

from __future__ import annotations

from syncd.core.statuspage import MirrorStatus, render_metrics

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
