"""Write into syncd's record what a publish and the monitor would have: for tests and
benchmarks of what reads it (the DNS gate and rotation), without running either."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from syncd.monitor.freshness import Check, Record
from syncd.monitor.store import MonitorStore
from syncd.publish.store import PublishStore
from syncd.sqlite import open_db


def record_publish(
    state: Path, outcomes: Mapping[str, bool], release: Mapping[str, int], at: float | None = None
) -> str:
    """A release run in which each mirror of `outcomes` ended ok (True, reporting `release`)
    or failed; return its run id."""
    at = time.time() if at is None else at
    store = PublishStore(open_db(state))
    run = f"run-{time.monotonic_ns()}"
    try:
        store.create_run(
            run, at, expected=dict(release), request="sync", inventory=None, mirrors=list(outcomes)
        )
        for name, ok in outcomes.items():
            store.finish_target(
                run,
                name,
                at,
                outcome="ok" if ok else "failed",
                error=None if ok else "rsync failed",
                report=None,
                versions=dict(release) if ok else None,
            )
    finally:
        store.conn.close()
    return run


def record_checks(
    state: Path, names: list[str], release: Mapping[str, int], at: float | None = None
) -> None:
    """The monitor saw each of `names` serve `release` over IPv4 at `at` (a good check)."""
    at = time.time() if at is None else at
    store = MonitorStore(open_db(state))
    try:
        store.save(
            (n, "IPv4", Check(at, True, at - 60, dict(release)), Record(), None) for n in names
        )
    finally:
        store.conn.close()


def record_served(
    state: Path, names: list[str], release: Mapping[str, int], at: float | None = None
) -> None:
    """`names` were pushed `release` and seen serving it: both records at once."""
    record_publish(state, dict.fromkeys(names, True), release, at)
    record_checks(state, names, release, at)
