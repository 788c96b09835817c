"""Metrics to alert on: every state series present with 0 or 1, per address family, the
release, the gate, the publish runs; valid for `promtool check metrics`; and the example alert
rules in deploy/prometheus/ pass `promtool check rules` and their own `promtool test rules`."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devtools.harness.cvd import write_release
from devtools.harness.documents import LAB_INVENTORY
from devtools.harness.nginx import Nginx
from syncd.cli import app
from syncd.dns.gate import GateVerdict
from syncd.monitor.certs import STATES as CERT_STATES
from syncd.monitor.certs import CertStatus
from syncd.monitor.run import read_snapshot
from syncd.publish.store import PublishStore
from syncd.sqlite import open_db
from syncd.statuspage.build import run_facts
from syncd.statuspage.metrics import (
    FAMILY_STATES,
    MIRROR_STATES,
    RUN_OUTCOMES,
    MetricsSnapshot,
    RunFacts,
    render_metrics,
)
from syncd.statuspage.rows import MirrorStatus
from tests.monitor.test_monitor_e2e import _docroot, _mirror, released
from tests.release.sample import sample_releases

NOW = 2_000_000_000.0  # a pinned clock; rendered only
ROOT = Path(__file__).resolve().parent.parent.parent
RULES = ROOT / "deploy" / "prometheus"
HOSTILE = 'we"ird\\name\nx'


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: run scripts/setup (Debian package prometheus)"
    return path


def row(name: str, state: str = "fresh", **kw: object) -> MirrorStatus:
    base: dict[str, object] = dict(
        country="PL",
        since=NOW - 3600,
        age_s=1800.0,
        served={"daily": 28034, "main": 62},
        completion_24h=1.0,
        completion_7d=0.95,
        mean_delay_7d_s=1200.0,
        score=1.0,
        last_push="ok",
    )
    base.update(kw)
    return MirrorStatus(name=name, state=state, **base)  # type: ignore[arg-type]


def snapshot() -> MetricsSnapshot:
    return MetricsSnapshot(
        NOW,
        {"daily": 28034, "main": 62, "bytecode": 339},
        [
            row("a.example"),
            row("b.example", "old", age_s=90_000.0, last_push="timeout"),
            row("c.example", "disabled", age_s=None, served={}, last_push=None),
            row("d.example", "no http URL", age_s=None, served={}),
            row(HOSTILE, "lagging"),
        ],
        {
            ("a.example", "IPv4"): "fresh",
            ("a.example", "IPv6"): "fresh",
            ("b.example", "IPv4"): "fresh",
            ("b.example", "IPv6"): "old",
            (HOSTILE, "any"): "lagging",
        },
        [
            RunFacts("release", "finished", NOW - 900, NOW - 780, {"ok": 3, "timeout": 1}),
            RunFacts("release", "finished", NOW - 9000, NOW - 8940, {"ok": 4}),
            RunFacts("heartbeat", "running", NOW - 60, None, {"none": 4}),
            RunFacts("heartbeat", "cancelled", NOW - 11_000, NOW - 10_950, {"ok": 2, "none": 2}),
        ],
        GateVerdict(False, 0.6, (), (), (), "3 of 5 mirrors serve the release", 0.9),
        release_propagation=sample_releases(3, now=NOW)[0],
        t90_limit_s=7200.0,
        certs={
            "a.example": CertStatus(
                "a.example", "https://a.example", NOW, "ok", (), "f" * 64, NOW - 10, NOW + 3600
            ),
            HOSTILE: CertStatus(
                HOSTILE,
                "https://x",
                NOW,
                "expired",
                ("it expired",),
                "e" * 64,
                NOW - 90_000,
                NOW - 60,
            ),
            "b.example": CertStatus("b.example", "https://b.example", NOW, "failed", ("no TLS",)),
        },
    )


def test_the_certificates_are_counted_down_and_judged() -> None:
    got = samples(render_metrics(snapshot()))
    assert got['pushsync_mirror_cert_expiry_seconds{mirror="a.example"}'] == 3600
    assert got['pushsync_mirror_cert_valid{mirror="a.example"}'] == 1
    assert got['pushsync_mirror_cert_valid{mirror="b.example"}'] == 0
    assert 'pushsync_mirror_cert_expiry_seconds{mirror="b.example"}' not in got  # none read
    assert got['pushsync_mirror_cert_state{mirror="b.example",state="failed"}'] == 1
    states = [k for k in got if k.startswith('pushsync_mirror_cert_state{mirror="a.example"')]
    assert len(states) == len(CERT_STATES)


def samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            out[series] = float(value)
    return out


def test_every_state_is_a_series_of_its_own() -> None:
    got = samples(render_metrics(snapshot()))
    for name, current in [
        ("a.example", "fresh"),
        ("b.example", "old"),
        ("c.example", "disabled"),
        ("d.example", "unchecked"),
    ]:
        values = {
            s: got[f'pushsync_mirror_state{{mirror="{name}",state="{s}"}}'] for s in MIRROR_STATES
        }
        assert values == {s: float(s == current) for s in MIRROR_STATES}
    for (mirror, family), current in {
        ("b.example", "IPv4"): "fresh",
        ("b.example", "IPv6"): "old",
    }.items():
        for s in FAMILY_STATES:
            key = f'pushsync_mirror_family_state{{mirror="{mirror}",family="{family}",state="{s}"}}'
            assert got[key] == float(s == current)
    assert got['pushsync_mirror_last_push_ok{mirror="b.example"}'] == 0
    assert not any(k.startswith('pushsync_mirror_age_seconds{mirror="c.example"') for k in got)


def test_release_gate_and_runs() -> None:
    got = samples(render_metrics(snapshot()))
    assert got['pushsync_release_version{database="daily"}'] == 28034
    assert got['pushsync_release_version{database="bytecode"}'] == 339
    assert got["pushsync_gate_open"] == 0
    assert got["pushsync_gate_serving_ratio"] == 0.6
    assert got["pushsync_gate_required_ratio"] == 0.9
    # the newest release run: when, how long, outcomes by class (every class present)
    assert got['pushsync_publish_last_run_start_timestamp_seconds{kind="release"}'] == NOW - 900
    assert got['pushsync_publish_last_run_duration_seconds{kind="release"}'] == 120
    release = {
        o: got[f'pushsync_publish_last_run_mirrors{{kind="release",outcome="{o}"}}']
        for o in RUN_OUTCOMES
    }
    assert release == {o: {"ok": 3.0, "timeout": 1.0}.get(o, 0.0) for o in RUN_OUTCOMES}
    # the last fully ok one is older
    assert got['pushsync_publish_last_success_timestamp_seconds{kind="release"}'] == NOW - 8940
    # a heartbeat running now: its start and state; its last ended run's outcomes
    assert got['pushsync_publish_last_run_start_timestamp_seconds{kind="heartbeat"}'] == NOW - 60
    assert got['pushsync_publish_last_run_state{kind="heartbeat",state="running"}'] == 1
    assert got['pushsync_publish_last_run_state{kind="heartbeat",state="finished"}'] == 0
    assert got['pushsync_publish_last_run_end_timestamp_seconds{kind="heartbeat"}'] == NOW - 10_950
    assert got['pushsync_publish_last_run_mirrors{kind="heartbeat",outcome="none"}'] == 2
    assert 'pushsync_publish_last_success_timestamp_seconds{kind="heartbeat"}' not in got
    assert got["pushsync_monitor_last_run_timestamp_seconds"] == NOW


def test_the_newest_release_propagation_and_announce_delay() -> None:
    got = samples(render_metrics(snapshot()))
    newest = sample_releases(3, now=NOW)[0]  # nine of ten mirrors, a minute apart (x3)
    assert got['pushsync_release_propagation_seconds{quantile="0.5"}'] == 900
    assert got['pushsync_release_propagation_seconds{quantile="0.9"}'] == 1620
    # 99 % and 100 % not reached: no sample (a missing mirror is never counted)
    assert 'pushsync_release_propagation_seconds{quantile="0.99"}' not in got
    assert 'pushsync_release_propagation_seconds{quantile="1"}' not in got
    assert got['pushsync_release_build_propagation_seconds{quantile="0.5"}'] == 1200
    assert got["pushsync_release_announce_delay_seconds"] == 600
    assert got["pushsync_release_publish_start_timestamp_seconds"] == newest.started_at
    assert got["pushsync_release_served_ratio"] == 0.9
    assert got["pushsync_release_missing_mirrors"] == 1
    assert got["pushsync_release_slow_after_seconds"] == 7200
    # without a release recorded, none of them
    bare = render_metrics(MetricsSnapshot(NOW, {}, []))
    assert "pushsync_release_propagation_seconds" not in bare


def test_labels_are_escaped() -> None:
    text = render_metrics(snapshot())
    # cleaned first (syncd.text.clean: a line break is a space), then escaped
    assert 'mirror="we\\"ird\\\\name x"' in text
    assert all(line.count("\n") == 0 for line in text.splitlines())
    sample = re.compile(
        r'[a-z_]+(\{[a-z]+="(\\[\\"n]|[^"\\\n])*"(,[a-z]+="(\\[\\"n]|[^"\\\n])*")*\})? \S+'
    )
    for line in text.splitlines():
        assert line.startswith("#") or sample.fullmatch(line), line


def test_promtool_accepts_the_metrics(tmp_path: Path) -> None:
    for snap in (snapshot(), MetricsSnapshot(NOW, {}, [])):
        done = subprocess.run(
            [promtool(), "check", "metrics"],
            input=render_metrics(snap),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout + done.stderr == ""  # no lint finding either


def test_alert_rules_check_and_pass_their_unit_tests() -> None:
    rules = RULES / "pushsync-alerts.yml"
    check = subprocess.run(
        [promtool(), "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert re.search(r"SUCCESS: \d+ rules found", check.stdout)
    unit = subprocess.run(
        [promtool(), "test", "rules", "pushsync-alerts.test.yml"],
        cwd=RULES,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert unit.returncode == 0, unit.stdout + unit.stderr


def test_every_metric_the_rules_name_is_rendered() -> None:
    names = set(re.findall(r"\bpushsync_[a-z_]+", (RULES / "pushsync-alerts.yml").read_text()))
    text = render_metrics(snapshot())
    assert names and all(f"# TYPE {n} gauge" in text for n in names), names


@pytest.fixture
def pstore(tmp_path: Path) -> PublishStore:
    return PublishStore(open_db(tmp_path / "state.db"))


def test_run_facts_from_the_record(pstore: PublishStore) -> None:
    def run(run_id: str, at: float, kind: str, outcomes: dict[str, str], end: str | None) -> None:
        pstore.create_run(
            run_id,
            at,
            expected={"daily": 1},
            request="r",
            inventory=None,
            mirrors=outcomes,
            kind=kind,
        )
        for mirror, outcome in outcomes.items():
            if outcome:
                pstore.finish_target(
                    run_id, mirror, at + 5, outcome=outcome, error=None, report=None
                )
        if end:
            pstore.finish_run(run_id, at + 10, end)

    run("r1", NOW - 500, "release", {"m1": "ok", "m2": "ok"}, "finished")
    run("r2", NOW - 400, "release", {"m1": "ok", "m2": "timeout"}, "finished")
    run("r3", NOW - 300, "release", {"m1": "", "m2": ""}, None)  # running
    run("h1", NOW - 200, "heartbeat", {"m1": "ok"}, "finished")
    run("r0", NOW - 900, "release", {"m1": "ok"}, "finished")  # older than needed
    snap = read_snapshot(pstore.conn, ["m1", "m2"], NOW)
    facts = {(f.kind, f.started_at): f for f in run_facts(snap)}
    assert sorted(facts) == [
        ("heartbeat", NOW - 200),
        ("release", NOW - 500),
        ("release", NOW - 400),
        ("release", NOW - 300),
    ]
    assert facts[("release", NOW - 300)].outcomes == {"none": 2}
    assert facts[("release", NOW - 400)].outcomes == {"ok": 1, "timeout": 1}
    got = samples(render_metrics(MetricsSnapshot(NOW, {}, [], runs=list(facts.values()))))
    assert got['pushsync_publish_last_run_state{kind="release",state="running"}'] == 1
    assert got['pushsync_publish_last_success_timestamp_seconds{kind="release"}'] == NOW - 490
    assert got['pushsync_publish_last_run_mirrors{kind="release",outcome="timeout"}'] == 1


def test_a_real_monitor_pass_writes_metrics_promtool_accepts(
    tmp_path: Path, nginx_factory: Callable[..., Nginx]
) -> None:
    """`syncd monitor --once` against real nginx mirrors, with [dns] (the gate's figures; no
    server here, so --no-dns): the file it writes."""
    source = tmp_path / "source"
    write_release(source, 28034, build_time=released())
    fresh = nginx_factory(_docroot(tmp_path, "fresh", 28034, 0.5))
    lagging = nginx_factory(_docroot(tmp_path, "lag", 28033, 0.5))
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(
        LAB_INVENTORY
        + _mirror("fresh.example", fresh.base_url, "A <a@example.org>")
        + _mirror("lag.example", lagging.base_url, "B <b@example.org>")
    )
    metrics = tmp_path / "metrics" / "pushsync.prom"
    config = tmp_path / "syncd.toml"
    config.write_text(f"""
inventory = "{inventory}"
state = "{tmp_path / "state.sqlite"}"
source_tree = "{source}"
[monitor]
lagging_grace_h = 1
metrics = "{metrics}"
[dns]
key_name = "pushsync-update"
key_secret_file = "{tmp_path / "tsig.secret"}"
gate_share = 0.5
""")
    done = CliRunner().invoke(
        app, ["monitor", "--once", "--no-mail", "--no-dns", "--config", str(config)]
    )
    assert done.exit_code == 0, done.output
    text = metrics.read_text()
    check = subprocess.run(
        [promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0 and not check.stdout + check.stderr, check.stdout + check.stderr
    got = samples(text)
    assert got['pushsync_mirror_state{mirror="lag.example",state="lagging"}'] == 1
    assert got['pushsync_mirror_state{mirror="lag.example",state="fresh"}'] == 0
    family = 'pushsync_mirror_family_state{mirror="fresh.example",family="IPv4",state="fresh"}'
    assert got[family] == 1
    assert got['pushsync_release_version{database="daily"}'] == 28034
    # nothing was published: no mirror serves the release as the gate counts it
    assert got["pushsync_gate_open"] == 0 and got["pushsync_gate_required_ratio"] == 0.5
    assert not any(k.startswith("pushsync_publish_") for k in got)
