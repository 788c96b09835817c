"""Retry classification: one attempt's result -> a verdict (ok, queued, retry, fail) and the
outcome to record if we stop there. Pure and table driven, like borgmatic's exit-code table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from pushwire.report import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_TEMPFAIL, EXIT_USAGE
from syncd.publish.errors import PushError
from syncd.publish.outcome import PushOutcome, Verdict
from syncd.publish.report import Report
from syncd.text import clean


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    outcome: PushOutcome  # what to record if this is the last attempt
    error: str = ""  # cleaned (`syncd.text.clean`): it may quote a mirror's words

    def __post_init__(self) -> None:
        object.__setattr__(self, "error", clean(self.error))


# The client's exit codes (the contract): what each means when no report says otherwise.
EXIT_CODES: Mapping[int, tuple[Verdict, str]] = {
    EXIT_OK: (Verdict.OK, ""),
    EXIT_USAGE: (
        Verdict.FAIL,
        "the mirror rejected the request (exit 64): upgrade its clam-clientsync",
    ),
    EXIT_TEMPFAIL: (Verdict.RETRY, "temporary failure on the mirror (exit 75)"),
    EXIT_CONFIG: (
        Verdict.FAIL,
        "configuration error on the mirror (exit 78): ask its admin to run doctor",
    ),
    EXIT_FAILURE: (Verdict.FAIL, "the mirror's sync failed (exit 1)"),
    126: (Verdict.FAIL, "the forced command is not executable on the mirror (exit 126)"),
    127: (Verdict.FAIL, "the forced command is not installed on the mirror (exit 127)"),
}


def judge_error(err: PushError) -> Judgement:
    """Given a translated transport error, return its judgement."""
    verdict = Verdict.RETRY if err.transient else Verdict.FAIL
    return Judgement(verdict, err.outcome, err.message)


def _versions_text(report: Report, expected: Mapping[str, int]) -> str:
    have = report.versions()
    parts = [f"{db} {have.get(db, 'none')} (want {v})" for db, v in sorted(expected.items())]
    return ", ".join(parts)


def judge_reply(  # noqa: PLR0911 - a decision table reads best as early returns
    exit_status: int | None,
    report: Report | None,
    report_error: str,
    expected: Mapping[str, int],
) -> Judgement:
    """Given a finished command's exit status and its parsed report (or why it has none),
    return the judgement for a ``sync`` request."""
    if exit_status is None:
        return Judgement(
            Verdict.RETRY, PushOutcome.FAILED, "the command ended without an exit status"
        )
    verdict, meaning = EXIT_CODES.get(
        exit_status, (Verdict.FAIL, f"the mirror's command exited {exit_status}")
    )
    if report is None:
        if verdict is Verdict.OK:
            return Judgement(Verdict.FAIL, PushOutcome.FAILED, f"no valid report: {report_error}")
        return Judgement(verdict, PushOutcome.FAILED, f"{meaning}; no valid report: {report_error}")
    detail = report.error_text()
    if report.status == "rejected":
        return Judgement(Verdict.FAIL, PushOutcome.FAILED, f"request rejected: {detail or meaning}")
    if report.status == "failed":
        retry = exit_status == EXIT_TEMPFAIL
        text = detail or meaning or "the mirror reported failure"
        return Judgement(Verdict.RETRY if retry else Verdict.FAIL, PushOutcome.FAILED, text)
    if exit_status != 0:
        return Judgement(verdict, PushOutcome.FAILED, f"{meaning}; report says {report.status}")
    if report.status == "queued":
        return Judgement(Verdict.QUEUED, PushOutcome.FAILED, "queued behind a running sync")
    if not report.serves(expected):
        # The source may still be catching up with the release: worth another round.
        return Judgement(
            Verdict.RETRY,
            PushOutcome.FAILED,
            f"synced but serves an older release: {_versions_text(report, expected)}",
        )
    return Judgement(Verdict.OK, PushOutcome.OK)


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def judge_poll(
    exit_status: int | None,
    report: Report | None,
    report_error: str,
    expected: Mapping[str, int],
    *,
    since: str | None = None,
) -> Judgement:
    """Given the answer to a ``status`` request of a queued mirror, return its judgement:
    OK when it now serves the release, QUEUED to keep polling, RETRY/FAIL otherwise.

    `since` is when the mirror queued our push (its own clock, from the queued report): a
    report that finished before then is from an earlier sync and says nothing about ours."""
    if exit_status == 0 and report is not None:
        if report.status == "ok" and report.serves(expected):
            return Judgement(Verdict.OK, PushOutcome.OK)
        finished, queued = _instant(report.finished_at), _instant(since)
        stale = finished is not None and queued is not None and finished < queued
        if report.status in ("ok", "queued") or stale:
            return Judgement(
                Verdict.QUEUED,
                PushOutcome.TIMEOUT,
                f"still syncing: {_versions_text(report, expected)}",
            )
    return judge_reply(exit_status, report, report_error, expected)
