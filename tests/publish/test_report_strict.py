"""A mirror's report is read as strict JSON: numbers JSON has no room for, or that no int()
can read, make it an invalid report (a ReportError naming the problem), never an exception
that ends the run; and what syncd writes is strict JSON whatever its record holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.harness.documents import report
from syncd.publish.outcome import PushOutcome
from syncd.publish.report import ReportError, dumps_strict, parse_report
from syncd.publish.summary import MirrorResult, Proof, summary_lines, to_json

OK = report()


def test_a_valid_report_still_parses_to_its_values() -> None:
    parsed, raw = parse_report(OK.encode())
    assert parsed.status == "ok" and parsed.duration_s == 1.0
    assert parsed.versions()["main"] == 62 and raw["client_version"] == "fake-1"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (OK.replace('"signatures": 1000', '"signatures": ' + "9" * 5000, 1), "unusable number"),
        (OK.replace('"duration_s": 1.0', '"duration_s": NaN'), "NaN"),
        (OK.replace('"duration_s": 1.0', '"duration_s": Infinity'), "Infinity"),
        (OK.replace('"duration_s": 1.0', '"duration_s": -Infinity'), "-Infinity"),
        (OK.replace('"duration_s": 1.0', '"duration_s": 1e999'), "too large for a float"),
        (OK.replace('"error": null', '"error": null, "x": [NaN]'), "NaN"),
    ],
)
def test_numbers_strict_json_cannot_carry_make_an_invalid_report(text: str, says: str) -> None:
    with pytest.raises(ReportError, match=says) as err:
        parse_report(text.encode())
    assert len(str(err.value)) < 300


def test_output_is_strict_json_whatever_the_record_holds() -> None:
    doc = to_json(
        "R1", {"daily": 1}, [MirrorResult("m", PushOutcome.OK, 1, None, {"d": float("nan")})]
    )
    text = dumps_strict({**doc, "inf": [float("inf"), -float("inf")]})
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["mirrors"][0]["report"] == {"d": None}


def test_an_ok_without_http_proof_says_unproven() -> None:
    results = [
        MirrorResult("proven", PushOutcome.OK, 1, None, proof=Proof.HTTP),
        MirrorResult("bare", PushOutcome.OK, 1, None, proof=Proof.UNPROVEN),
    ]
    lines = summary_lines(results, "R1")
    assert lines[:2] == ["run R1: 2 of 2 mirrors serve the release", "serve the release: 2"]
    assert lines[2] == "  unproven (1, ok on their own report, not checked over HTTP): bare"
    proofs = {m["name"]: m["proof"] for m in to_json("R1", {}, results)["mirrors"]}
    assert proofs == {"proven": "http", "bare": "unproven"}


def test_a_long_unproven_list_is_a_count_and_the_first_names() -> None:
    """500 unproven mirrors: one short line, the first eight names and how many more. (Proven
    to fail before the fix: the line held all 500 names, 10,000 characters.)"""
    results = [
        MirrorResult(f"mirror{i:03d}.example.org", PushOutcome.OK, 1, None, proof=Proof.UNPROVEN)
        for i in range(500)
    ]
    (line,) = [line for line in summary_lines(results, "R1") if "unproven" in line]
    assert line.startswith("  unproven (500, ok on their own report, not checked over HTTP): ")
    assert "mirror007.example.org and 492 more (--json gives each one's proof)" in line
    assert "mirror008" not in line and len(line) < 300


def test_timeout_advice_says_whether_a_client_ran() -> None:
    """A timeout at connect or login ran no client: the advice is about reaching sshd, not
    the client's log; a timeout waiting for the report keeps the old advice. (Proven to fail
    before the fix: both got "the mirror's client keeps running under its own deadline".)"""
    login = MirrorResult("a", PushOutcome.TIMEOUT, 3, "connect or login timed out")
    slow = MirrorResult("b", PushOutcome.TIMEOUT, 1, "no report within 900 s (...)")
    text = "\n".join(summary_lines([login], "R1"))
    assert "no client ran where connect or login timed out" in text
    assert "keeps running" not in text
    text = "\n".join(summary_lines([slow], "R1"))
    assert "no client ran" not in text and "keeps running under its own deadline" in text
    both = "\n".join(summary_lines([login, slow], "R1"))
    assert "no client ran" in both and "keeps running" in both


def test_auth_failed_advice_names_a_locked_account_and_the_doctor_that_finds_it() -> None:
    """sshd refuses a locked account's keys as it refuses a wrong key: the advice names both,
    and the guide's command that gives doctor's verdict on the lock. (Proven to fail before:
    the advice only asked for the authorized_keys line again.)"""
    refused = MirrorResult("a", PushOutcome.AUTH_FAILED, 1, "permission denied for our key")
    text = "\n".join(summary_lines([refused], "R1"))
    assert "install the current authorized_keys line for the pusher key" in text
    assert "the account may be locked" in text
    command = "runuser -u clamavdb -G shadow -- ~clamavdb/bin/clam-clientsync --doctor"
    assert command in text
    guide = (Path(__file__).resolve().parents[2] / "docs" / "operators-guide.md").read_text()
    assert command.replace("~clamavdb", "/home/clamavdb") in guide  # what the guide runs
