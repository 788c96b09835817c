"""The judgements that used to live in the shell, now tables in the core: how a push ends
when no reply decides it, what counts as a mirror serving the release (the gate's evidence),
and the monitor's cadence."""

from __future__ import annotations

import pytest

from syncd.dns.gate import ServedBy, evidence, served_by
from syncd.monitor.freshness import Check, State
from syncd.monitor.run import repeat
from syncd.publish.classify import Judgement
from syncd.publish.outcome import MirrorPushState, PushOutcome, Verdict
from syncd.publish.verdicts import Ending, ended, final, interrupted

RELEASE = {"daily": 2, "main": 1}
STILL = Judgement(Verdict.QUEUED, PushOutcome.TIMEOUT, "still syncing: daily 1 (want 2)")
REFUSED = Judgement(Verdict.RETRY, PushOutcome.UNREACHABLE, "connection refused")


@pytest.mark.parametrize(
    ("ending", "last", "detail", "outcome", "error"),
    [
        (Ending.RUN_DEADLINE, None, "", PushOutcome.TIMEOUT, "run deadline passed"),
        (
            Ending.RUN_DEADLINE,
            REFUSED,
            "",
            PushOutcome.TIMEOUT,
            "run deadline passed (last: connection refused)",
        ),
        (
            Ending.RUN_DEADLINE,
            Judgement(Verdict.FAIL, PushOutcome.TIMEOUT, "run deadline passed"),
            "",
            PushOutcome.TIMEOUT,
            "run deadline passed",  # not "(last: run deadline passed)"
        ),
        (Ending.CANCELLED, REFUSED, "", PushOutcome.CANCELLED, "cancelled (SIGINT/SIGTERM)"),
        (
            Ending.STILL_QUEUED,
            STILL,
            "",
            PushOutcome.TIMEOUT,
            "queued, and not done at the deadline: still syncing: daily 1 (want 2)",
        ),
        (Ending.NOT_SERVED, None, "http (IPv4): serves daily 1", PushOutcome.FAILED, None),
    ],
)
def test_endings(
    ending: Ending, last: Judgement | None, detail: str, outcome: PushOutcome, error: str | None
) -> None:
    j = ended(ending, last, detail)
    assert (j.verdict, j.outcome, j.error) == (Verdict.FAIL, outcome, error or detail)


def test_an_interrupted_attempt_and_the_final_outcome() -> None:
    assert interrupted(True) == Judgement(Verdict.FAIL, PushOutcome.TIMEOUT, "run deadline passed")
    assert interrupted(False) == Judgement(Verdict.FAIL, PushOutcome.CANCELLED, "cancelled")
    assert final(Judgement(Verdict.OK, PushOutcome.OK)) == (PushOutcome.OK, None)
    assert final(REFUSED) == (PushOutcome.UNREACHABLE, "connection refused")
    assert final(Judgement(Verdict.FAIL, PushOutcome.AUTH_FAILED)) == (
        PushOutcome.AUTH_FAILED,
        "auth_failed",
    )


@pytest.mark.parametrize(
    ("check_is_newer", "push_ok", "http_proof", "source"),
    [
        (True, True, True, ServedBy.CHECK),
        (True, False, False, ServedBy.CHECK),
        (False, True, True, ServedBy.PROOF),
        (False, True, False, ServedBy.NOTHING),  # a report alone is not evidence of serving
        (False, False, True, ServedBy.NOTHING),
    ],
)
def test_what_counts_as_served(
    check_is_newer: bool, push_ok: bool, http_proof: bool, source: ServedBy
) -> None:
    assert served_by(check_is_newer, push_ok, http_proof) is source


def _push(outcome: str, at: float, versions: dict[str, int] | None) -> MirrorPushState:
    return MirrorPushState("m", "R", outcome, at, at if outcome == "ok" else None, versions, 1.0)


def test_evidence_takes_the_newer_of_the_monitor_and_the_publish() -> None:
    old_check = Check(10.0, True, 5.0, {"daily": 1, "main": 1})
    push = _push("ok", 20.0, RELEASE)
    e = evidence(
        "m", "PL", live=True, push=push, latest_check=old_check, states=[], http_proof=True
    )
    assert (e.reported, e.served, e.fresh) == (RELEASE, RELEASE, True)  # proved since
    e = evidence(
        "m", "PL", live=True, push=push, latest_check=old_check, states=[], http_proof=False
    )
    assert e.served is None
    new_check = Check(30.0, True, 25.0, {"daily": 1, "main": 1})
    e = evidence(
        "m", "PL", live=True, push=push, latest_check=new_check, states=[State.OLD], http_proof=True
    )
    assert (e.served, e.fresh) == ({"daily": 1, "main": 1}, False)
    failed = _push("failed", 20.0, None)
    e = evidence(
        "m", "PL", live=False, push=failed, latest_check=None, states=[State.FRESH], http_proof=True
    )
    assert (e.active, e.reported, e.served, e.fresh) == (False, None, None, True)


def test_monitor_passes_keep_their_cadence() -> None:
    now = [0.0]
    slept: list[float] = []

    def one_pass() -> float:
        now[0] += 2.0  # each pass takes 2 s
        return now[0]

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    ends = list(repeat(one_pass, interval_s=5.0, passes=3, sleep=sleep, monotonic=lambda: now[0]))
    assert ends == [2.0, 7.0, 12.0] and slept == [3.0, 3.0]
    assert list(repeat(one_pass, interval_s=5.0, passes=1, sleep=sleep)) == [14.0]
