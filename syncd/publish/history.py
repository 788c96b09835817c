"""Past publish runs as the record holds them, for ``syncd status`` and ``syncd runs show``:
read once, the connection closed, each run's state as it really is (a run the record calls
``running`` that no process works on is ``interrupted``)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from syncd.errors import UsageError
from syncd.publish.outcome import MirrorPushState, RunRow, TargetRow
from syncd.publish.runlock import shown_state
from syncd.publish.store import PublishStore
from syncd.sqlite import open_db


@dataclass(frozen=True)
class RunCounts:
    run: RunRow  # its state as shown
    outcomes: dict[str, int]  # per mirror outcome ("pending" for none yet), how many


@dataclass(frozen=True)
class Status:
    runs: list[RunCounts]
    mirrors: list[MirrorPushState]


@dataclass(frozen=True)
class RunDetail:
    run: RunRow  # its state as shown
    targets: list[TargetRow]
    attempts: dict[str, list[dict[str, Any]]]  # per mirror, in order


def _record(path: Path) -> Path:
    if not path.exists():
        raise UsageError(f"{path}: no record yet (run 'syncd publish' first)")
    return path


def status(path: Path, runs: int = 5) -> Status:
    """The newest `runs` runs with their outcome counts, and each mirror's current state."""
    conn = open_db(_record(path))
    try:
        store = PublishStore(conn)
        counted = []
        for run in store.runs(runs):
            outcomes: dict[str, int] = {}
            for t in store.targets(run.run_id):
                outcomes[t.outcome or "pending"] = outcomes.get(t.outcome or "pending", 0) + 1
            shown = replace(run, state=shown_state(path, run.run_id, run.state))
            counted.append(RunCounts(shown, outcomes))
        return Status(counted, store.mirror_states())
    finally:
        conn.close()


def run_detail(path: Path, run_id: str) -> RunDetail:
    """One run: each mirror's outcome and every attempt; raise UsageError for no such run."""
    conn = open_db(_record(path))
    try:
        store = PublishStore(conn)
        run = store.run(run_id)
        if run is None:
            raise UsageError(f"no run {run_id!r}: see 'syncd status'")
        targets = store.targets(run_id)
        attempts = {t.mirror: store.attempts(run_id, t.mirror) for t in targets}
        shown = replace(run, state=shown_state(path, run.run_id, run.state))
        return RunDetail(shown, targets, attempts)
    finally:
        conn.close()
