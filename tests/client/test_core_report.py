"""The report is a contract: its keys are pinned, its exit codes follow MISSION.md."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from clientside.logsetup import redact
from pushwire import report

T0 = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)  # rendered only, never aged (noqa: date)

CONTRACT_KEYS = {
    "report_version",
    "status",
    "verb",
    "source_requested",
    "source_used",
    "attempts",
    "started_at",
    "finished_at",
    "duration_s",
    "files_transferred",
    "bytes_transferred",
    "files_deleted",
    "databases",
    "error",
    "client_version",
}


def test_report_keys_are_pinned() -> None:
    rep = report.new_report("sync", T0, "0.1.0", "rsync1.clamav.net")
    assert set(rep) == set(report.KEYS)
    assert set(rep) >= CONTRACT_KEYS
    assert set(rep) - CONTRACT_KEYS == {"run_id", "warnings", "rsync_version", "changes"}
    assert rep["report_version"] == 1


def test_optional_keys_are_not_contract_keys() -> None:
    """``rounds``, ``cdiffs``, ``signs``, ``maintenance`` and ``traffic`` are optional: old
    clients omit them, so a report without them is still version 1, and one with them still
    parses in syncd."""
    from syncd.publish import report as syncd_report

    optional = set(report.Report.__annotations__) - set(report.KEYS)
    assert optional == {"rounds", "cdiffs", "signs", "maintenance", "traffic"}
    rep = report.new_report("sync", T0, "0.1.0", None)
    assert not optional & set(rep)
    rep["cdiffs"] = {"daily": {"first": 28005, "last": 28034, "count": 30}}
    rep["signs"] = ["daily-28034.cvd.sign"]
    parsed, doc = syncd_report.parse_report(report.render(rep).encode())
    assert parsed.report_version == 1 and doc["cdiffs"] == rep["cdiffs"]
    assert doc["signs"] == rep["signs"]
    rep["maintenance"] = {"maintenance_version": 1, "from": "x", "until": 3, "reason": None}
    parsed, doc = syncd_report.parse_report(report.render(rep).encode())  # a bad one: kept
    assert parsed.status == rep["status"] and doc["maintenance"]["until"] == 3


def test_finish_and_render() -> None:
    rep = report.new_report("sync", T0, "0.1.0", None)
    report.finish(rep, "ok", T0, T0 + timedelta(seconds=1.5))
    line = report.render(rep)
    assert "\n" not in line
    back = json.loads(line)
    assert back["started_at"] == "2026-11-25T09:30:00.000Z"
    assert back["finished_at"] == "2026-11-25T09:30:01.500Z"
    assert back["duration_s"] == 1.5


def test_exit_codes() -> None:
    def code(status: str, kind: str | None = None) -> int:
        rep = report.new_report("sync", T0, "x", None)
        rep["status"] = status
        if kind:
            report.set_error(rep, kind, "m")
        return report.exit_code(rep)

    assert code("ok") == 0
    assert code("queued") == 0
    assert code("rejected", "rejected") == 64
    assert code("rejected", "usage") == 64
    assert code("failed", "config") == 78
    assert code("failed", "rsync_transient") == 75
    assert code("failed", "deadline") == 75
    assert code("failed", "auth_failed") == 1
    assert code("failed", "corrupt_cvd") == 1
    assert code("failed", "whatever") == 1


def test_redact() -> None:
    assert redact("pw=s3cret s3cret", ["s3cret", ""]) == "pw=*** ***"
