"""The record read into `syncd.release.propagation`: the release runs, their targets and
attempts, the monitor's first sight of each release per mirror and family, the TXT changes
sent, the build times. Read-only; one connection, passed in."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping

from syncd.dns.query import txt_sent
from syncd.monitor.query import first_seen
from syncd.publish.outcome import RunRow
from syncd.publish.query import PublishQuery
from syncd.release.propagation import Propagation, announced, group_runs, propagation
from syncd.release.store import ReleaseStore

__all__ = ["read_releases", "release_for", "release_of_run", "txt_sent", "versions_text"]

RUNS_SEARCHED = 500  # the newest publish runs the releases are found among
SHOWN = 30  # the releases the status site, status.json and the metrics show


def read_releases(conn: sqlite3.Connection, limit: int = SHOWN) -> list[Propagation]:
    """The newest `limit` releases' propagation, newest first."""
    publish = PublishQuery(conn)
    built = ReleaseStore(conn).built_at()
    groups = group_runs(publish.runs(RUNS_SEARCHED))[:limit]
    txts = txt_sent(conn)
    return [_one(conn, publish, g, built, txts) for g in groups]


def release_of_run(conn: sqlite3.Connection, run: RunRow) -> Propagation | None:
    """The propagation of the release `run` pushed (None: a heartbeat, or no versions)."""
    if run.kind != "release" or not run.expected:
        return None
    publish = PublishQuery(conn)
    runs = publish.runs(RUNS_SEARCHED)
    group = [r for r in runs if r.kind == "release" and r.expected == run.expected] or [run]
    if run.run_id not in {r.run_id for r in group}:
        group.append(run)
    return _one(conn, publish, group, ReleaseStore(conn).built_at(), txt_sent(conn))


def _one(
    conn: sqlite3.Connection,
    publish: PublishQuery,
    group: list[RunRow],
    built: Mapping[int, float],
    txts: list[tuple[float, dict[str, int]]],
) -> Propagation:
    targets = {r.run_id: publish.targets(r.run_id) for r in group}
    attempts = {r.run_id: publish.attempts(r.run_id) for r in group}
    proven = {t.mirror for ts in targets.values() for t in ts if t.outcome == "ok"}
    # the monitor is asked only of the mirrors no publish proved: the proof is what counts
    unproven = sorted({t.mirror for ts in targets.values() for t in ts} - proven)
    start = min(r.started_at for r in group)
    release = dict(group[0].expected)
    daily = release.get("daily")
    return propagation(
        group,
        targets,
        attempts,
        first_seen(conn, unproven, release, start),
        built_at=built.get(daily) if daily is not None else None,
        announced_at=announced(txts, release),
    )


def versions_text(versions: Mapping[str, int]) -> str:
    return json.dumps(dict(sorted(versions.items())))


def release_for(conn: sqlite3.Connection, versions: Mapping[str, int]) -> Propagation | None:
    """The propagation of the release whose versions the TXT announces as `versions` (its
    runs: those whose every expected version is the TXT's); None when no run pushed it."""
    publish = PublishQuery(conn)
    group = [
        r
        for r in publish.runs(RUNS_SEARCHED)
        if r.kind == "release"
        and r.expected
        and all(versions.get(db) == v for db, v in r.expected.items())
    ]
    if not group:
        return None
    return _one(conn, publish, group, ReleaseStore(conn).built_at(), txt_sent(conn))
