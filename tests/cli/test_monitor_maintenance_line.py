"""``syncd monitor`` (without --json) says which mirrors are in maintenance, until when, why.

Proven to fail: before the line was printed, the test failed (no ``maintenance:`` line)."""

from __future__ import annotations

import pytest

from pushwire.maintenance import format_time
from syncd.cli.monitor import _print
from syncd.monitor.run import MailTally, PassSummary
from syncd.statuspage.rows import Maintenance, MirrorStatus

T = 1_800_000_000.0


def _row(name: str, window: Maintenance | None) -> MirrorStatus:
    return MirrorStatus(
        name, "PL", "unreachable", T, None, {}, None, None, None, None, "ok", "", window
    )


def test_the_mirrors_in_maintenance_are_listed(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [_row("a.example", Maintenance(T, T + 7200, "new disks", "admin")), _row("b", None)]
    _print(PassSummary(T, {}, rows, [], MailTally(0, 0, None)))
    out = capsys.readouterr().out
    assert f"maintenance: a.example until {format_time(T + 7200)}: new disks" in out
    assert "maintenance: b" not in out
