"""Synthetic record rows for the releases' pure parts: runs, targets and attempts as the
publish store returns them."""

from __future__ import annotations

from typing import Any

from syncd.publish.outcome import RunRow, TargetRow

START = 2_000_000_000.0  # a pinned clock: rendered, never compared with today
RELEASE = {"daily": 28035, "main": 63, "bytecode": 339}


def run(run_id: str, started_at: float = START, expected: dict[str, int] | None = None) -> RunRow:
    return RunRow(
        run_id, started_at, started_at + 600, "finished", dict(expected or RELEASE), "sync", None, 1
    )


def target(
    mirror: str, finished_at: float | None, outcome: str | None = "ok", **report: Any
) -> TargetRow:
    return TargetRow(mirror, outcome, 1, None, dict(report) or None, finished_at)


def attempt(run_id: str, mirror: str, source: str | None = None) -> dict[str, Any]:
    return {"run_id": run_id, "mirror": mirror, "verb": "sync", "source": source}
