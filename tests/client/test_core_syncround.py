"""A round's result becomes the report's keys in one place (``core.syncround.report_round``):
the round's own keys replaced, attempts and warnings added, the first error the report's and
the others warnings; a round an exception broke off leaves status and error to the exception.

Proven to fail: with ``report_round`` telling the errors after the first before the round's
own warnings, the property failed; with the status set for a round broken off, the example
failed."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from clientside.core.syncround import RoundResult, TransferStats, report_round
from pushwire import report

T0 = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)  # rendered only, never aged (noqa: date)

text = st.text(max_size=20)
errors = st.lists(st.tuples(st.sampled_from(sorted(report.ERROR_KINDS)), text), max_size=3)
attempts = st.lists(
    st.builds(report.attempt, text, st.none() | st.integers(0, 35), st.floats(0, 9), text),
    max_size=3,
)


@given(
    errors,
    st.lists(text, max_size=3),
    attempts,
    st.none() | text,
    st.lists(text, max_size=2),
)
def test_a_round_replaces_its_own_keys_and_adds_to_the_lists(
    errs: list[tuple[str, str]],
    warnings: list[str],
    tried: list[report.Attempt],
    used: str | None,
    before: list[str],
) -> None:
    rep = report.new_report("sync", T0, "1", "rsync1")
    rep["warnings"] = list(before)
    rep["error"] = {"kind": "internal", "message": "an earlier round's", "retryable": False}
    result = RoundResult(
        source_used=used,
        attempts=tuple(tried),
        stats=TransferStats(2, 300, ("a", "b")),
        files_deleted=1,
        warnings=tuple(warnings),
        errors=tuple(errs),
    )
    report_round(rep, result)
    assert set(rep) == set(report.KEYS)  # no key added: nothing was described
    assert rep["warnings"] == before + warnings + [f"{k}: {m}" for k, m in errs[1:]]
    assert rep["attempts"] == tried and rep["source_used"] == used
    assert (rep["files_transferred"], rep["bytes_transferred"], rep["changes"]) == (
        2,
        300,
        ["a", "b"],
    )
    assert rep["status"] == ("failed" if errs else "ok")
    if errs:
        assert rep["error"] is not None
        assert (rep["error"]["kind"], rep["error"]["message"]) == errs[0]
    else:
        assert rep["error"] is None


def test_a_round_broken_off_tells_what_it_found_and_no_status() -> None:
    rep = report.new_report("sync", T0, "1", "rsync1")
    rep["status"] = "queued"
    found = RoundResult(
        source_used="rsync1",
        attempts=(report.attempt("rsync1", 0, 1.0, None),),
        databases={},
        release_files=({}, ["daily.cvd.sign"]),
        errors=(("corrupt_cvd", "never told"),),
        ended=False,
    )
    report_round(rep, found)
    assert rep["status"] == "queued" and rep["error"] is None
    assert rep["source_used"] == "rsync1" and len(rep["attempts"]) == 1
    assert rep["cdiffs"] == {} and rep["signs"] == ["daily.cvd.sign"]
