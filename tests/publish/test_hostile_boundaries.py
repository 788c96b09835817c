"""The two boundaries text and failures from outside meet: each mirror's task is a failure
boundary (whatever handling one mirror raises is that mirror's failure, never the run's), and
every string from outside is cleaned (`syncd.text.clean`) before it is stored, rendered,
mailed or printed.

Real parts where a real part can do it: sshd forcing the real client or a script, nginx, the
record in SQLite, a hostile HTTP server. Faults no real server produces on demand (a bug at a
given stage of one mirror's handling) are injected in-process, for that mirror only.

How each was proved to fail before the fix: run against the previous commit's syncd (the
tree exported with ``git archive``, this file copied in; ``syncd/text.py`` there a shim
re-exporting the old ``syncd.publish.report.clean``). There the lone surrogate left the run
``running`` with no JSON, the outcome-record and display-end stages crashed the fan-out, a
bug in the freshness step ended the monitor pass without page or metrics, U+202E reached
``index.html``, rich read markup from an error, and every sink's property test found a
surrogate, a format character or a control that got through. The other stages (report,
judgement, attempt record, proof, display at an attempt) were already inside the old partial
``try``: with the boundary planted out of ``Publisher._push_one`` (its ``except Exception``
narrowed to one nothing raises) all seven stages fail.
"""

from __future__ import annotations

import contextvars
import functools
import io
import itertools
import json
import sqlite3
import unicodedata
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.policy import SMTP
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from devtools.harness.cvd import DEFAULT_VERSIONS, release_time, write_release
from devtools.harness.documents import LAB_INVENTORY, report, report_doc
from devtools.harness.faultproxy import closed_port
from devtools.harness.nginx import Nginx
from devtools.harness.smtp import SmtpSink
from devtools.harness.sshkeys import KeyPair
from syncd.cli import app
from syncd.cli.display import PlainProgress, RichProgress, print_summary
from syncd.inventory.model import Mirror, parse_inventory
from syncd.monitor import checks as monitor
from syncd.monitor import run as monitorpass
from syncd.monitor.announce import MirrorChange, mirror_mail
from syncd.monitor.freshness import Check, Record, State, Transition
from syncd.monitor.freshness import step as step_of_freshness
from syncd.monitor.mail import to_message
from syncd.monitor.snapshot import Change
from syncd.monitor.store import MonitorStore
from syncd.publish import fanout as publish
from syncd.publish import job as publish_job
from syncd.publish.classify import Judgement, judge_reply
from syncd.publish.config import Policy
from syncd.publish.fanout import Publisher
from syncd.publish.job import PublishJob, publish_main
from syncd.publish.outcome import PushOutcome, Verdict
from syncd.publish.report import dumps_strict, parse_report
from syncd.publish.store import PublishStore
from syncd.publish.summary import MirrorResult, summary_lines, to_json
from syncd.sqlite import open_db
from syncd.statuspage.metrics import MetricsSnapshot, render_metrics
from syncd.statuspage.rows import MirrorStatus
from syncd.statuspage.site import MirrorView, RunView, Site, render_site
from syncd.text import clean
from tests.fuzz.hostilehttp import HostileHttp
from tests.publish.fakes import BEHAVIOURS, MirrorFactory, _heredoc
from tests.publish.fixtures import Syncd, by_name
from tests.publish.realclient import MirrorMaker

# what no sink may ever hold: lone surrogates, controls, format characters (bidi, zero-width)
_FORBIDDEN = frozenset(("Cs", "Cc", "Cf", "Zl", "Zp"))
SURROGATE = "a\ud800"
MARKUP = "[/] [link=https://evil.example/]click here[/link] [bold red]"
BIDI = "\u202egnp.exe"
OTHER_RUN = "20200101T000000Z-abcdef"


def forbidden(text: str, allowed: str = "") -> list[str]:
    """The characters of `text` no sink may hold (but those in `allowed`: a file's own line
    breaks)."""
    return [
        c
        for c in text
        if c not in allowed and not c.isprintable() and unicodedata.category(c) in _FORBIDDEN
    ]


def strings(value: Any) -> Iterator[str]:
    """Every string (keys too) of a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def strict(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in JSON output")

    return json.loads(text, parse_constant=refuse)


# --- 1. one mirror's lone surrogate, markup, bidi and a report of another run -----------------


@pytest.fixture
def hostile_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(message: str, code: int) -> str:
        doc = report("failed", {}, error={"kind": "rsync_failed", "message": message})
        return _heredoc(doc) + f"exit {code}\n"

    monkeypatch.setitem(BEHAVIOURS, "surrogate", failing(SURROGATE, 1))
    # exit 75: retried, so it is shown as a retry too (rich reads markup there)
    monkeypatch.setitem(BEHAVIOURS, "markup", failing(f"{MARKUP} {BIDI}", 75))
    monkeypatch.setitem(BEHAVIOURS, "other_run", _heredoc(report(run_id=OTHER_RUN)) + "exit 0\n")


@pytest.mark.slow
def test_a_lone_surrogate_markup_bidi_or_another_runs_report_fail_that_mirror_alone(
    real_mirror: MirrorMaker,
    fake_mirror: MirrorFactory,
    syncd: Syncd,
    source_tree: Path,
    hostile_reports: None,
) -> None:
    """The issue's reproduction first: a report with ``"message": "a\\ud800"`` once stopped
    the whole run in SQLite's encoder (every other mirror cancelled, no summary, no JSON, the
    run left running, and every later publish and heartbeat the same)."""
    real = real_mirror("real.test")
    fleet = [
        fake_mirror("good.test", "ok"),
        fake_mirror("surrogate.test", "surrogate"),
        fake_mirror("markup.test", "markup"),
        fake_mirror("otherrun.test", "other_run"),
    ]
    syncd.write(real.inventory_block() + "".join(m.inventory_block() for m in fleet))
    # and neither the next publish nor a heartbeat is stopped by what the first recorded
    for turn in ("publish", "publish", "heartbeat"):
        proc = syncd.run(
            turn, "--config", str(syncd.config), "--json", "--source-tree", str(source_tree)
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        assert proc.returncode == 1, proc.stderr
        doc = strict(proc.stdout)
        got = by_name(doc)
        assert {n: m["outcome"] for n, m in got.items()} == {
            "real.test": "ok",
            "good.test": "ok",
            "surrogate.test": "failed",
            "markup.test": "failed",
            "otherrun.test": "failed",
        }, (turn, proc.stderr)
        assert got["real.test"]["proof"] == "http"
        assert got["surrogate.test"]["error"] == "rsync_failed: a\ufffd"
        assert MARKUP in got["markup.test"]["error"]  # shown as it is, never read as markup
        assert "answers run '20200101T000000Z-abcdef'" in got["otherrun.test"]["error"]
        assert f"run {doc['run_id']}: 2 of 5 mirrors serve the release" in proc.stderr
        for text in [proc.stderr, *strings(doc)]:
            assert not forbidden(text, "\n"), text
        shown = syncd.run("runs", "show", doc["run_id"], "--config", str(syncd.config), "--json")
        assert strict(shown.stdout)["state"] == "finished", shown.stderr
    conn = sqlite3.connect(syncd.state)
    errors = {m: e for m, e in conn.execute("SELECT mirror, error FROM publish_targets")}
    assert errors["surrogate.test"] == "rsync_failed: a\ufffd"
    running = "SELECT count(*) FROM publish_runs WHERE state = 'running'"
    assert conn.execute(running).fetchone()[0] == 0


# --- 2. a failure injected at each stage of one mirror's handling -----------------------------

VICTIM = "victim.test"
_handling: contextvars.ContextVar[str] = contextvars.ContextVar("handling", default="")


class _Progress:
    """A display that fails for the victim, at its attempts or at its end."""

    def __init__(self, fail_at: str) -> None:
        self.fail_at = fail_at

    def start(self, total: int) -> None:
        pass

    def attempt(self, mirror: str, verb: str, number: int, judgement: Judgement) -> None:
        if self.fail_at == "attempt" and mirror == VICTIM:
            raise ValueError("the display broke")

    def finished(self, result: MirrorResult) -> None:
        if self.fail_at == "end" and result.name == VICTIM:
            raise ValueError("the display broke")


def _inject(stage: str, monkeypatch: pytest.MonkeyPatch) -> _Progress:
    """Make `stage` of the victim's handling raise; return the display to use."""
    real_push_one = Publisher._push_one

    async def push_one(self: Publisher, mirror: Mirror, results: list[MirrorResult]) -> None:
        _handling.set(mirror.name)  # this mirror's task (trio copies the context per task)
        await real_push_one(self, mirror, results)

    monkeypatch.setattr(Publisher, "_push_one", push_one)

    def victim() -> bool:
        return _handling.get() == VICTIM

    if stage == "report":

        def parse(stdout: bytes) -> Any:
            if victim():
                raise UnicodeEncodeError("utf-8", SURROGATE, 1, 2, "surrogates not allowed")
            return parse_report(stdout)

        monkeypatch.setattr(publish, "parse_report", parse)
    elif stage == "judgement":

        def judge(*args: Any) -> Judgement:
            if victim():
                raise ZeroDivisionError("division by zero")
            return judge_reply(*args)

        monkeypatch.setattr(publish, "judge_reply", judge)
    elif stage in ("attempt record", "outcome record"):
        name = "start_attempt" if stage == "attempt record" else "finish_target"
        real_write = getattr(PublishStore, name)

        def write(self: PublishStore, run_id: str, mirror: str, *args: Any, **kw: Any) -> Any:
            # every start of the victim's attempts; its end but the boundary's own (failed)
            if mirror == VICTIM and kw.get("outcome") != "failed":
                raise LookupError("the record job broke")
            return real_write(self, run_id, mirror, *args, **kw)

        monkeypatch.setattr(PublishStore, name, write)
    elif stage == "proof":
        real_prover = publish_job.http_prover

        def prover(*args: Any, **kw: Any) -> Any:
            real_prove = real_prover(*args, **kw)

            async def prove(mirror: Mirror, expected: Any) -> str | None:
                if mirror.name == VICTIM:
                    raise KeyError("daily")
                return await real_prove(mirror, expected)

            return prove

        monkeypatch.setattr(publish_job, "http_prover", prover)
    return _Progress(
        {"display at an attempt": "attempt", "display at the end": "end"}.get(stage, "")
    )


STAGES = {  # stage -> the victim's outcome, its error's start, the run's state
    "report": ("failed", "internal error: UnicodeEncodeError", "finished"),
    "judgement": ("failed", "internal error: ZeroDivisionError", "finished"),
    "attempt record": ("failed", "internal error: LookupError", "failed"),
    "proof": ("failed", "internal error: KeyError: 'daily'", "finished"),
    "outcome record": ("failed", "internal error: LookupError", "failed"),
    "display at an attempt": ("failed", "internal error: ValueError", "finished"),
    # its end was recorded before the display failed: it stands (an ok is never overwritten)
    "display at the end": ("ok", None, "finished"),
}


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(STAGES))
def test_a_failure_at_any_stage_of_one_mirror_is_that_mirrors_alone(
    stage: str,
    tmp_path: Path,
    real_mirror: MirrorMaker,
    keypair: KeyPair,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fleet = [real_mirror(VICTIM), real_mirror("good.test", source=1)]
    progress = _inject(stage, monkeypatch)
    db = tmp_path / "state.sqlite"
    job = PublishJob(
        key=keypair.private,
        state=db,
        inventory=parse_inventory(LAB_INVENTORY + "".join(m.inventory_block() for m in fleet)),
        inventory_path="inventory.toml",
        policy=Policy(connect_timeout=3, login_timeout=3, command_timeout=10, run_timeout=40),
        expected=dict(DEFAULT_VERSIONS),
    )
    outcome = trio.run(functools.partial(publish_main, job, progress, handle_signals=False))

    want_outcome, want_error, want_state = STAGES[stage]
    results = {r.name: r for r in outcome.results}
    assert set(results) == {VICTIM, "good.test"}
    assert results["good.test"].outcome is PushOutcome.OK, results["good.test"]
    assert results["good.test"].proof is not None and results["good.test"].proof.value == "http"
    victim = results[VICTIM]
    assert victim.outcome.value == want_outcome, victim
    if want_error:
        assert victim.error is not None and victim.error.startswith(want_error), victim
    # the run ended: its summary, its JSON, its record
    lines = summary_lines(outcome.results, outcome.run_id)
    assert any(VICTIM in line for line in lines) or want_outcome == "ok", lines
    doc = strict(dumps_strict(to_json(outcome.run_id, outcome.expected, outcome.results)))
    assert by_name(doc)[VICTIM]["outcome"] == want_outcome
    store = PublishStore(open_db(db))
    run = store.run(outcome.run_id)
    assert run is not None and run.state == want_state, (run, outcome.record_error)
    recorded = {t.mirror: t.outcome for t in store.targets(outcome.run_id)}
    assert recorded == {VICTIM: want_outcome, "good.test": "ok"}, recorded


# --- 3. the monitor pass: bidi from a Location header, a bug in one mirror's judgement --------

STEP_BUG_STAMP = 1_234_567_890
RELEASE = (DEFAULT_VERSIONS["daily"], DEFAULT_VERSIONS["main"], DEFAULT_VERSIONS["bytecode"])


@pytest.mark.slow
def test_a_monitor_pass_cleans_what_mirrors_send_and_survives_one_mirrors_bug(
    tmp_path: Path, nginx_factory: Callable[..., Nginx], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "source"
    write_release(source, *RELEASE)
    good_root, bug_root = tmp_path / "good", tmp_path / "stepbug"
    write_release(good_root, *RELEASE)
    write_release(bug_root, *RELEASE)
    (bug_root / "timestamp").write_text(f"{STEP_BUG_STAMP}\n")
    good, stepbug = nginx_factory(good_root), nginx_factory(bug_root)

    def step(before: Record, check: Check, *args: Any) -> tuple[Record, Transition | None]:
        if check.timestamp == STEP_BUG_STAMP:  # the one mirror whose judgement hits a bug
            raise ValueError("math domain error")
        return step_of_freshness(before, check, *args)

    monkeypatch.setattr(monitor, "step", step)
    page, metrics = tmp_path / "www" / "index.html", tmp_path / "metrics" / "pushsync.prom"
    with HostileHttp() as hostile:
        where = f"http://evil.example/{BIDI}{MARKUP}".encode()
        answer = b"HTTP/1.1 302 Found\r\nLocation: " + where + b"\r\nContent-Length: 0\r\n\r\n"
        hostile.queue(*[answer] * 10)
        inventory = tmp_path / "inventory.toml"
        inventory.write_text(
            LAB_INVENTORY
            + "".join(
                f'[[mirrors]]\nname = "{name}"\nhost = "127.0.0.1"\ncountry = "PL"\n'
                f'admins = ["A <a@example.org>"]\nhttp = "{url}"\n'
                'host_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq0gZ7wI0nR0b7eQq0k9v3bq2yqLx'
                '1m6y1c7J8Vb3aT"]\n'
                for name, url in [
                    ("good.example", good.base_url),
                    ("bidi.example", hostile.base_url),
                    ("stepbug.example", stepbug.base_url),
                ]
            )
        )
        config = tmp_path / "syncd.toml"
        config.write_text(
            f'inventory = "{inventory}"\nstate = "{tmp_path / "state.sqlite"}"\n'
            f'source_tree = "{source}"\n[monitor]\nrequest_timeout_s = 3\nunreachable_after = 1\n'
            "outage_share = 1.0\n"  # a fleet of attacks fails mostly by design
            f'status_page = "{page}"\nmetrics = "{metrics}"\n'
        )
        result = CliRunner().invoke(
            app, ["monitor", "--once", "--json", "--no-mail", "--config", str(config)]
        )
    assert result.exit_code == 0, result.output
    summary = strict(result.stdout.strip().splitlines()[-1])
    rows = {m["name"]: m for m in summary["mirrors"]}
    assert rows["good.example"]["state"] == "fresh"
    assert rows["bidi.example"]["state"] != "fresh"
    assert "redirects to http://evil.example/gnp.exe[/]" in rows["bidi.example"]["reason"]
    assert rows["stepbug.example"]["state"] != "fresh"
    assert "ValueError: math domain error" in rows["stepbug.example"]["reason"]
    assert not forbidden(result.stdout, "\n")
    files = [page, page.parent / "status.json", *sorted((page.parent / "mirrors").glob("*.html"))]
    assert len(files) == 5 and metrics.exists()
    for f in [*files, metrics]:
        assert not forbidden(f.read_text(), "\n"), f
    conn = sqlite3.connect(tmp_path / "state.sqlite")
    for (reason,) in conn.execute("SELECT reason FROM monitor_transitions"):
        assert not forbidden(reason), reason


@pytest.mark.slow
def test_a_mail_that_breaks_stops_neither_the_page_nor_the_metrics(
    tmp_path: Path,
    nginx_factory: Callable[..., Nginx],
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sending raises what no adapter translated (a fault of one mail's build): the pass
    still writes its page and metrics, says why no mail went out, and marks none sent."""
    source = tmp_path / "source"
    # released 2 h ago: past the 1 h lagging grace configured below
    write_release(source, *RELEASE, build_time=release_time() - timedelta(hours=2))
    lagging_root = tmp_path / "lagging"
    write_release(lagging_root, RELEASE[0] - 1, *RELEASE[1:])
    web = nginx_factory(lagging_root)
    page, metrics = tmp_path / "www" / "index.html", tmp_path / "metrics" / "pushsync.prom"
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(
        LAB_INVENTORY + '[[mirrors]]\nname = "lag.example"\nhost = "127.0.0.1"\ncountry = "PL"\n'
        f'admins = ["A <a@example.org>"]\nhttp = "{web.base_url}"\n'
        'host_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq0gZ7wI0nR0b7eQq0k9v3bq2yqLx'
        '1m6y1c7J8Vb3aT"]\n'
    )
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'inventory = "{inventory}"\nstate = "{tmp_path / "state.sqlite"}"\n'
        f'source_tree = "{source}"\n[monitor]\nrequest_timeout_s = 3\nlagging_grace_h = 1\n'
        "outage_share = 1.0\n"  # a fleet of attacks fails mostly by design
        f'status_page = "{page}"\nmetrics = "{metrics}"\nmail_interval_h = 0\n'
        f'[monitor.smtp]\nhost = "{smtp_sink.host}"\nport = {smtp_sink.port}\n'
        'sender = "monitor@example.org"\n'
    )

    def broken(*args: Any) -> Any:
        raise IndexError("list index out of range")

    monkeypatch.setattr(monitorpass, "send_each", broken)
    argv = ["monitor", "--once", "--json", "--config", str(config)]
    first = CliRunner().invoke(app, argv)
    assert first.exit_code == 1, first.output  # the mail failed: said, and the exit code says so
    summary = strict(first.stdout.strip().splitlines()[-1])
    assert summary["mail"]["error"] == (
        "mail failed unexpectedly: IndexError: list index out of range"
    )
    assert {m["name"]: m["state"] for m in summary["mirrors"]} == {"lag.example": "lagging"}
    assert "lag.example" in page.read_text()
    assert 'mirror="lag.example"' in metrics.read_text()
    assert smtp_sink.messages == []

    conn = sqlite3.connect(tmp_path / "state.sqlite")
    assert (
        conn.execute("SELECT count(*) FROM monitor_transitions WHERE mailed = 1").fetchone()[0] == 0
    )
    assert conn.execute("SELECT count(*) FROM monitor_mail").fetchone()[0] == 0


# --- 4. every sink, arbitrary unicode (surrogates included) -----------------------------------

ANY_TEXT = st.text(
    st.one_of(
        st.characters(codec=None, exclude_categories=()),  # every code point, surrogates too
        st.sampled_from("\ud800\udfff\u202e\u2066\u200b\ufeff\x1b\x00\x85\u2028\n\t[]/"),
    ),
    max_size=300,
)
_numbers = itertools.count()
SINKS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SINKS
@given(ANY_TEXT, st.integers(1, 400))
def test_clean_leaves_nothing_a_sink_cannot_take(text: str, limit: int) -> None:
    out = clean(text, limit)
    assert not forbidden(out)
    out.encode("utf-8")  # strict: no surrogate left
    assert len(out) <= limit
    assert clean(out, limit) == out  # a fixed point
    if text.isprintable() and len(text) <= limit:
        assert out == text  # clean text goes through untouched


@SINKS
@given(ANY_TEXT)
def test_a_report_of_any_text_is_recorded_and_read_back_clean(tmp_path: Path, text: str) -> None:
    """Report -> judgement -> the publish record (SQLite) -> the JSON."""
    doc = report_doc("failed", {}, error={"kind": text, "message": text}, client_version=text)
    raw = json.dumps(doc).encode()  # ASCII: lone surrogates as \\ud800 escapes
    rep, cleaned = parse_report(raw)
    judgement = judge_reply(1, rep, "", DEFAULT_VERSIONS)
    conn = open_db(tmp_path / "state.sqlite")
    try:
        store = PublishStore(conn)
        run = f"r{next(_numbers)}"
        store.create_run(
            run, 1.0, expected=DEFAULT_VERSIONS, request="sync", inventory="i", mirrors=["m"]
        )
        store.finish_target(run, "m", 2.0, outcome="failed", error=judgement.error, report=cleaned)
        (target,) = store.targets(run)
    finally:
        conn.close()
    assert target.error == judgement.error and not forbidden(target.error or "")
    for s in strings(target.report):
        assert not forbidden(s)
    result = MirrorResult("m", PushOutcome.FAILED, 1, target.error, target.report)
    for s in strings(strict(dumps_strict(to_json(run, DEFAULT_VERSIONS, [result])))):
        assert not forbidden(s)


@SINKS
@given(ANY_TEXT)
def test_a_check_of_any_text_is_stored_paged_measured_and_mailed_clean(
    tmp_path: Path, text: str
) -> None:
    """A check's error (what the HTTP check quoted) -> the monitor record (SQLite) -> the
    status page, status.json, the metrics labels, the admin's mail headers; the rendered
    sinks also take any text as a mirror's name, host, URL or admin (as an older inventory
    may hold)."""
    check = Check(100.0, False, error=text, incomplete=(text,))
    transition = Transition(State.UNKNOWN, State.UNREACHABLE, 100.0, f"failed: {text}")
    conn = open_db(tmp_path / f"m{next(_numbers)}.sqlite")
    try:
        store = MonitorStore(conn)
        # the name is the inventory's (validated there: a host name); what the check quoted
        # is anything
        store.save([("m.example", "IPv4", check, Record(State.UNREACHABLE, 100.0), transition)])
        (row,) = store.transitions("m.example")
        (stored,) = store.checks("m.example", 0.0)
    finally:
        conn.close()
    assert not forbidden(row["reason"]) and not forbidden(stored.error or "")

    status = MirrorStatus(
        text, text, "unreachable", 100.0, None, {text: 1}, None, None, None, None, text, text
    )
    view = MirrorView(
        status,
        host=text,
        http=text,
        admins=(text,),
        runs=(RunView(text, text, 90.0, 95.0, text, 1, text),),
        changes=(Change(text, 100.0, text, text, row["reason"]),),
    )
    files = render_site(Site(200.0, dict(DEFAULT_VERSIONS), None, None, (view,)))
    for name, body in files.items():
        assert not forbidden(body, "\n"), name
    for s in strings(strict(files["status.json"])):
        assert not forbidden(s)

    metrics = render_metrics(
        MetricsSnapshot(200.0, dict(DEFAULT_VERSIONS), [status], {(text, text): "unreachable"})
    )
    assert not forbidden(metrics, "\n")

    change = MirrorChange(text, transition, ("Admin <admin@example.org>",))
    message = to_message(mirror_mail(change), "monitor@example.org")
    wire = message.as_bytes(policy=SMTP)
    head = wire.split(b"\r\n\r\n", 1)[0].decode("ascii")  # headers: 7-bit, encoded words
    assert not forbidden(str(message["Subject"]))
    assert "\n" not in str(message["Subject"]) and head


@SINKS
@given(ANY_TEXT)
def test_the_terminal_shows_any_text_as_text(text: str) -> None:
    """Plain lines and the rich display: nothing from data is read as markup or reaches the
    terminal as a control or a format character."""
    from rich.console import Console

    result = MirrorResult(text, PushOutcome.FAILED, 3, text)
    judgement = Judgement(Verdict.RETRY, PushOutcome.FAILED, text)
    plain = io.StringIO()
    shown = PlainProgress(plain)
    shown.start(1)
    shown.attempt(text, "sync", 1, judgement)
    shown.finished(result)
    assert not forbidden(plain.getvalue(), "\n")

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=300, color_system=None)
    fancy = RichProgress(console)
    fancy.start(1)
    fancy.attempt(text, "sync", 1, judgement)
    fancy.finished(result)
    print_summary([result], "r1", console=console)
    printed = out.getvalue()
    assert not forbidden(printed.replace("\x1b", "").replace("\r", ""), "\n")


def test_rich_never_reads_markup_from_a_mirror() -> None:
    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=300, color_system=None)
    progress = RichProgress(console)
    progress.start(1)
    progress.attempt(MARKUP, "sync", 1, Judgement(Verdict.RETRY, PushOutcome.FAILED, MARKUP))
    progress.stop()
    assert f"{MARKUP}: retrying ({MARKUP})" in out.getvalue()
    assert "\x1b]8;" not in out.getvalue()  # no terminal hyperlink


@settings(SINKS, max_examples=40)  # four commands an example
@given(ANY_TEXT)
def test_the_mirrors_and_runs_commands_show_any_text_as_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    """`syncd mirrors check` prints its checklist (each item's text quotes the mirror: a
    Location, an error, a body), `syncd runs show` and `syncd status` what the publish record
    holds of a mirror's errors: no control or format character of any of them reaches the
    terminal."""
    from syncd.cli import mirrors as mirrors_cli
    from syncd.inventory.golive import Item

    n = next(_numbers)
    inv = tmp_path / f"inventory{n}.toml"
    inv.write_text(LAB_INVENTORY)
    mirror = Mirror(name="m.example", host="127.0.0.1", country="PL", pending=True)
    items = [Item(text, False, text), Item("http: /local_stats/", True, text, warn=True)]
    monkeypatch.setattr(mirrors_cli, "check", lambda *args: (mirror, items))
    shown = CliRunner().invoke(app, ["mirrors", "check", "m.example", "--inventory", str(inv)])
    assert shown.exit_code == 1, shown.output
    assert not forbidden(shown.stdout, "\n"), shown.stdout

    db = tmp_path / f"state{n}.sqlite"
    conn = open_db(db)
    try:
        store = PublishStore(conn)
        store.create_run(
            "r1", 1.0, expected=DEFAULT_VERSIONS, request="sync", inventory="i", mirrors=["m"]
        )
        attempt, _ = store.start_attempt("r1", "m", "sync", 1.5)
        store.finish_attempt(
            attempt, 1.8, verdict="fail", outcome="failed", exit_status=1, error=text, report=None
        )
        store.finish_target("r1", "m", 2.0, outcome="failed", error=text, report=None)
        store.finish_run("r1", 3.0, "finished")
        conn.commit()
    finally:
        conn.close()
    for argv in (["runs", "show", "r1"], ["runs", "show", "r1", "--json"], ["status"]):
        out = CliRunner().invoke(app, [*argv, "--state", str(db)])
        assert out.exit_code == 0, out.output
        assert not forbidden(out.stdout, "\n"), (argv, out.stdout)


def test_mirrors_check_shows_a_hostile_location_cleaned(tmp_path: Path) -> None:
    """A mirror's vhosts redirect with a Location holding U+202E, a zero-width space and rich
    markup: `syncd mirrors check` says each redirect, with neither format character, the
    markup shown as text (never read: typer prints it as it is), and exits 1 as for any
    failed item."""
    ssh_port = closed_port()
    with HostileHttp() as hostile:
        where = f"http://evil.example/{BIDI}\u200b{MARKUP}".encode()
        answer = b"HTTP/1.1 302 Found\r\nLocation: " + where + b"\r\nContent-Length: 0\r\n\r\n"
        hostile.queue(*[answer] * 10)
        inv = tmp_path / "inventory.toml"
        inv.write_text(
            LAB_INVENTORY + '[[mirrors]]\nname = "bidi.example"\nhost = "127.0.0.1"\n'
            f'port = {ssh_port}\npending = true\ncountry = "PL"\nadmins = ["A <a@example.org>"]\n'
            f'http = "{hostile.base_url}"\n'
        )
        shown = CliRunner().invoke(
            app, ["mirrors", "check", "bidi.example", "--inventory", str(inv)]
        )
    assert shown.exit_code == 1, shown.output
    out = shown.stdout
    assert out.count(f"redirects to http://evil.example/gnp.exe{MARKUP}") == 4, out  # 3 + stats
    assert "\u202e" not in out and "\u200b" not in out and "\x1b" not in out
    assert not forbidden(out, "\n"), out
