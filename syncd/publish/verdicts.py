"""How a push ends when no reply decides it: the run's deadline passed, the operator cancelled,
a queued mirror was still syncing at the deadline, or the HTTP proof found the release not
served; and what a mirror's last judgement means as its final outcome. Pure and table driven,
like the exit-code table in `syncd.publish.classify`."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from syncd.publish.classify import Judgement
from syncd.publish.outcome import PushOutcome, Verdict


class Ending(StrEnum):
    """What stopped a push without a reply that decides it."""

    RUN_DEADLINE = "run deadline passed"  # the run's deadline cut the mirror's push short
    CANCELLED = "cancelled (SIGINT/SIGTERM)"  # the operator stopped the run
    INTERRUPTED = "cancelled"  # one attempt was cut short by the cancellation
    STILL_QUEUED = "queued, and not done at the deadline"
    NOT_SERVED = "not served over HTTP"  # the HTTP proof found a problem (it says which)
    BROKEN = "internal error"  # an error no adapter translated (the mirror's own fault)


ENDINGS: Mapping[Ending, tuple[PushOutcome, str]] = {
    Ending.RUN_DEADLINE: (PushOutcome.TIMEOUT, "run deadline passed"),
    Ending.CANCELLED: (PushOutcome.CANCELLED, "cancelled (SIGINT/SIGTERM)"),
    Ending.INTERRUPTED: (PushOutcome.CANCELLED, "cancelled"),
    Ending.STILL_QUEUED: (PushOutcome.TIMEOUT, "queued, and not done at the deadline"),
    Ending.NOT_SERVED: (PushOutcome.FAILED, ""),
    Ending.BROKEN: (PushOutcome.FAILED, "internal error"),
}


def ended(ending: Ending, last: Judgement | None = None, detail: str = "") -> Judgement:
    """Given how a push ended and its last judgement before that (if any), return the final
    judgement: `ENDINGS`' outcome, its text with what the last attempt said (or `detail`)."""
    outcome, text = ENDINGS[ending]
    said = last.error if last is not None else ""
    if ending is Ending.RUN_DEADLINE and said and said != text:
        text = f"{text} (last: {said})"
    elif ending is Ending.STILL_QUEUED:
        text = f"{text}: {said}"
    elif ending is Ending.NOT_SERVED:
        text = detail
    elif ending is Ending.BROKEN and detail:
        text = f"{text}: {detail}"
    return Judgement(Verdict.FAIL, outcome, text)


def interrupted(past_deadline: bool) -> Judgement:
    """An attempt cut short before it was judged: by the run's deadline, or a cancellation."""
    return ended(Ending.RUN_DEADLINE if past_deadline else Ending.INTERRUPTED)


def final(judgement: Judgement) -> tuple[PushOutcome, str | None]:
    """Given a mirror's last judgement, return its outcome in the run and its error (None
    when ok; the outcome's name when the judgement says nothing more)."""
    if judgement.verdict is Verdict.OK:
        return PushOutcome.OK, None
    return judgement.outcome, judgement.error or judgement.outcome.value
