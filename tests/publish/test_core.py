"""The pure core of publish: tables and exact messages, no I/O."""

from __future__ import annotations

import pytest

from devtools.harness.documents import report
from pushwire.request import RequestError, render_request
from syncd.inventory.model import parse_inventory, updated
from syncd.publish.classify import EXIT_CODES, judge_error, judge_poll, judge_reply
from syncd.publish.errors import (
    AuthFailed,
    BadOutput,
    CommandTimeout,
    ConnectionDropped,
    HandshakeTimeout,
    HostKeyMismatch,
    ProtocolError,
    PushError,
    Unreachable,
)
from syncd.publish.outcome import PushOutcome, Verdict
from syncd.publish.plan import PlanError, plan
from syncd.publish.report import ReportError, parse_report
from syncd.publish.request import parse_expect
from syncd.publish.summary import MirrorResult, exit_code, group, summary_lines, to_json
from tests.inventory.test_model import GOOD


def test_request_rendering_matches_the_client_grammar() -> None:
    line = render_request("sync", "20261125T140000Z-abc123", {"main": 62, "daily": 28034})
    assert line == "sync run-id=20261125T140000Z-abc123 expect-daily=28034 expect-main=62"
    assert render_request("status") == "status"
    # how long syncd waits: the client stops by then on its own (bounded like the client)
    assert render_request("sync", "r1", {}, deadline=900.5) == "sync run-id=r1 deadline=900"
    assert render_request("sync", "r1", {}, deadline=10**9).endswith(" deadline=86400")
    for bad_id in ("", "a b", "x" * 65, "id;rm"):
        with pytest.raises(RequestError):
            render_request("sync", bad_id)
    with pytest.raises(RequestError):
        render_request("shell")
    assert parse_expect(["daily=5", "main=6"]) == {"daily": 5, "main": 6}
    with pytest.raises(RequestError, match="--expect 'safebrowsing=1'"):
        parse_expect(["safebrowsing=1"])


def test_report_is_tolerant_and_cleaned() -> None:
    raw = report(future_key={"x": 1}, client_version="1.0\x1b[2J\u202e evil")
    parsed, doc = parse_report(raw.encode())
    assert parsed.status == "ok" and parsed.versions()["daily"] == 28033
    assert doc["client_version"] == "1.0[2J evil"
    assert doc["future_key"] == {"x": 1}
    for bad, why in [
        (b"", "no report"),
        (b"hello", "not one JSON object"),
        (b"[1]", "not an object"),
        (b'{"report_version": 1, "status": "great"}', "report field status"),
        (b'{"report_version": 2, "status": "ok"}', "newer than this syncd"),
        (b"[" * 100000, "JSON"),
    ]:
        with pytest.raises(ReportError, match=why):
            parse_report(bad)


def _rep(status: str = "ok", daily: int = 28033) -> object:
    return parse_report(report(status, {"daily": daily}).encode())[0]


EXPECT = {"daily": 28033}


@pytest.mark.parametrize(
    ("exit_status", "status", "daily", "verdict", "outcome"),
    [
        (0, "ok", 28033, Verdict.OK, PushOutcome.OK),
        (0, "ok", 28040, Verdict.OK, PushOutcome.OK),  # newer than asked is fine
        (0, "ok", 28000, Verdict.RETRY, PushOutcome.FAILED),  # source behind: another round
        (0, "queued", 28000, Verdict.QUEUED, PushOutcome.FAILED),
        (64, "rejected", 0, Verdict.FAIL, PushOutcome.FAILED),
        (75, "failed", 0, Verdict.RETRY, PushOutcome.FAILED),
        (78, "failed", 0, Verdict.FAIL, PushOutcome.FAILED),
        (1, "failed", 0, Verdict.FAIL, PushOutcome.FAILED),
        (75, "ok", 28033, Verdict.RETRY, PushOutcome.FAILED),  # inconsistent: trust the exit code
        (None, "ok", 28033, Verdict.RETRY, PushOutcome.FAILED),  # killed by a signal
    ],
)
def test_judge_reply_table(
    exit_status: int | None, status: str, daily: int, verdict: Verdict, outcome: PushOutcome
) -> None:
    j = judge_reply(exit_status, _rep(status, daily), "", EXPECT)  # type: ignore[arg-type]
    assert (j.verdict, j.outcome) == (verdict, outcome)


def test_judge_reply_without_report() -> None:
    assert judge_reply(0, None, "garbage", EXPECT).verdict is Verdict.FAIL
    assert judge_reply(75, None, "garbage", EXPECT).verdict is Verdict.RETRY
    assert judge_reply(127, None, "", EXPECT).error.endswith("(exit 127); no valid report: ")
    assert judge_reply(3, None, "", EXPECT).verdict is Verdict.FAIL
    assert set(EXIT_CODES) >= {0, 1, 64, 75, 78}


def test_judge_poll() -> None:
    assert judge_poll(0, _rep("ok"), "", EXPECT).verdict is Verdict.OK  # type: ignore[arg-type]
    assert judge_poll(0, _rep("ok", 1), "", EXPECT).verdict is Verdict.QUEUED  # type: ignore[arg-type]
    assert judge_poll(0, _rep("queued"), "", EXPECT).verdict is Verdict.QUEUED  # type: ignore[arg-type]
    assert judge_poll(1, _rep("failed"), "", EXPECT).verdict is Verdict.FAIL  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "verdict", "outcome"),
    [
        (HostKeyMismatch("x"), Verdict.FAIL, PushOutcome.HOST_KEY_MISMATCH),
        (AuthFailed("x"), Verdict.FAIL, PushOutcome.AUTH_FAILED),
        (Unreachable("x"), Verdict.RETRY, PushOutcome.UNREACHABLE),
        (ConnectionDropped("x"), Verdict.RETRY, PushOutcome.UNREACHABLE),
        (HandshakeTimeout("x"), Verdict.RETRY, PushOutcome.TIMEOUT),
        (CommandTimeout("x"), Verdict.FAIL, PushOutcome.TIMEOUT),
        (BadOutput("x"), Verdict.FAIL, PushOutcome.FAILED),
        (ProtocolError("x"), Verdict.RETRY, PushOutcome.FAILED),
        (PushError("x"), Verdict.FAIL, PushOutcome.FAILED),
    ],
)
def test_judge_error_table(error: PushError, verdict: Verdict, outcome: PushOutcome) -> None:
    j = judge_error(error)
    assert (j.verdict, j.outcome, j.error) == (verdict, outcome, "x")


def test_plan_orders_slowest_first_and_skips_done() -> None:
    inv = updated(parse_inventory(GOOD), "b.example.org", active=True)
    names = [m.name for m in plan(inv, last_duration={"b.example.org": 30.0})]
    assert names == ["b.example.org", "a.example.org"]
    assert [m.name for m in plan(inv, done=["b.example.org"])] == ["a.example.org"]
    assert [m.name for m in plan(inv, only=["a.example.org"])] == ["a.example.org"]
    with pytest.raises(PlanError, match="not in the inventory: zz"):
        plan(inv, only=["zz"])


def test_summary_groups_problems_first_with_actions() -> None:
    results = [
        MirrorResult("ok1", PushOutcome.OK, 1, None),
        MirrorResult(
            "hk",
            PushOutcome.HOST_KEY_MISMATCH,
            1,
            "host key not verifiable",
            None,
            "hk.example.org",
            2222,
            ("Jan <jan@example.org>",),
        ),
        MirrorResult("down", PushOutcome.UNREACHABLE, 3, "connection refused"),
    ]
    groups = group(results, "R1")
    assert [g.outcome for g in groups] == [
        PushOutcome.HOST_KEY_MISMATCH,
        PushOutcome.UNREACHABLE,
        PushOutcome.OK,
    ]
    (action,) = groups[0].actions
    assert "Jan <jan@example.org>" in action and "ssh-keyscan -p 2222 hk.example.org" in action
    assert "syncd mirrors pin hk --host-key" in action
    lines = summary_lines(results, "R1")
    assert lines[0] == "run R1: 1 of 3 mirrors serve the release"
    assert any("syncd publish --resume R1" in line for line in lines)
    doc = to_json("R1", {"daily": 1}, results)
    assert set(doc) == {"run_id", "expected", "mirrors"}
    assert set(doc["mirrors"][0]) == {"name", "outcome", "attempts", "error", "report", "proof"}
    assert exit_code(results) == 1 and exit_code(results[:1]) == 0


def test_loading_syncd_does_not_patch_asyncio() -> None:
    """trio_asyncio replaces asyncio's loop policy on import: only a publish may load it."""
    import subprocess
    import sys

    code = (  # every module of syncd (but __main__, which runs the command line)
        "import importlib, pkgutil, sys, syncd\n"
        "for m in pkgutil.walk_packages(syncd.__path__, 'syncd.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "sys.exit('trio_asyncio' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# What ``syncd publish`` and ``syncd heartbeat`` load before they push is every publish's
# start-up time: these are imported by the code paths that use them (http_check, a terminal,
# the trio-asyncio loop, a pending mirror's promotion), never at start-up. The other groups
# are not loaded at all (tests/cli/test_lazy.py).
LAZY = (
    "tomlkit",
    "rich",
    "httpx",
    "trio_asyncio",
    "syncd.inventory.registration",
    "syncd.inventory.onboarding",
    "syncd.cli.mirrors",
    "syncd.cli.monitor",
)


def test_a_publish_loads_no_library_it_may_not_need() -> None:
    import subprocess
    import sys

    code = (
        "import sys, syncd.cli.publish, syncd.cli.heartbeat\n"
        f"print(' '.join(m for m in {LAZY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert done.stdout.split() == []


def test_judge_poll_ignores_reports_older_than_our_queued_push() -> None:
    old_failure = parse_report(
        report(
            "failed",
            {},
            finished_at="2026-11-25T13:00:00Z",
            error={"kind": "rsync", "message": "yesterday's failure"},
        ).encode()
    )[0]
    queued_at = "2026-11-25T14:00:00Z"
    j = judge_poll(0, old_failure, "", EXPECT, since=queued_at)
    assert j.verdict is Verdict.QUEUED
    fresh_failure = parse_report(report("failed", {}, finished_at="2026-11-25T14:00:05Z").encode())[
        0
    ]
    assert judge_poll(0, fresh_failure, "", EXPECT, since=queued_at).verdict is Verdict.FAIL
