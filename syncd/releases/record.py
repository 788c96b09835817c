"""The record read into `syncd.releases.propagation`: the release runs, their targets and
attempts, the monitor's first sight of each release per mirror and family, the TXT changes
sent, the build times. Read-only; one connection, passed in."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence

from syncd.dns.plan import TXT_NAME, DnsSafetyError, TxtRecord
from syncd.publish.outcome import RunRow
from syncd.publish.store import PublishStore
from syncd.releases.propagation import Propagation, announced, group_runs, propagation
from syncd.releases.store import ReleaseStore

RUNS_SEARCHED = 500  # the newest publish runs the releases are found among
SHOWN = 30  # the releases the status site, status.json and the metrics show


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def txt_sent(conn: sqlite3.Connection) -> list[tuple[float, dict[str, int]]]:
    """Each TXT the record says was sent to the primary: (when, its versions). A value that
    does not parse is left out."""
    if "dns_changes" not in _tables(conn):
        return []
    rows = conn.execute(
        "SELECT at, added FROM dns_changes WHERE rdtype = 'TXT' AND outcome = 'sent' "
        "AND view IS NULL AND name = ?",
        (TXT_NAME,),
    )
    out = []
    for r in rows:
        for value in str(r["added"]).split('" "') if r["added"] else []:
            try:
                txt = TxtRecord.parse(value)
            except DnsSafetyError:
                continue
            out.append((float(r["at"]), txt.versions))
    return out


def _first_seen(
    conn: sqlite3.Connection, mirrors: Sequence[str], release: Mapping[str, int], since: float
) -> dict[str, dict[str, float | None]]:
    """Per mirror, per address family checked at or after `since`, its first check that saw
    every database of `release` at least at its version (None: none did); SQLite reads the
    versions (json_extract), so a month of checks is not decoded in Python."""
    if "monitor_checks" not in _tables(conn) or not mirrors:
        return {}
    out: dict[str, dict[str, float | None]] = {}
    marks = ", ".join("?" * len(mirrors))
    for r in conn.execute(
        f"SELECT DISTINCT mirror, family FROM monitor_checks WHERE at >= ? AND mirror IN ({marks})",  # noqa: S608
        (since, *mirrors),
    ):
        out.setdefault(r["mirror"], {})[r["family"]] = None
    dbs = sorted(release)
    cond = " AND ".join("CAST(json_extract(versions, ?) AS INTEGER) >= ?" for _ in dbs)
    args: list[object] = []
    for db in dbs:
        args += [f"$.{db}", int(release[db])]
    query = (
        "SELECT mirror, family, MIN(at) AS first FROM monitor_checks "  # noqa: S608
        f"WHERE at >= ? AND ok = 1 AND versions IS NOT NULL AND mirror IN ({marks})"
        + (f" AND {cond}" if cond else "")
        + " GROUP BY mirror, family"
    )
    for r in conn.execute(query, (since, *mirrors, *args)):
        out.setdefault(r["mirror"], {})[r["family"]] = float(r["first"])
    return out


def read_releases(conn: sqlite3.Connection, limit: int = SHOWN) -> list[Propagation]:
    """The newest `limit` releases' propagation, newest first."""
    publish = PublishStore(conn)
    built = ReleaseStore(conn).built_at()
    groups = group_runs(publish.runs(RUNS_SEARCHED))[:limit]
    txts = txt_sent(conn)
    return [_one(conn, publish, g, built, txts) for g in groups]


def release_of_run(conn: sqlite3.Connection, run: RunRow) -> Propagation | None:
    """The propagation of the release `run` pushed (None: a heartbeat, or no versions)."""
    if run.kind != "release" or not run.expected:
        return None
    publish = PublishStore(conn)
    runs = publish.runs(RUNS_SEARCHED)
    group = [r for r in runs if r.kind == "release" and r.expected == run.expected] or [run]
    if run.run_id not in {r.run_id for r in group}:
        group.append(run)
    return _one(conn, publish, group, ReleaseStore(conn).built_at(), txt_sent(conn))


def _one(
    conn: sqlite3.Connection,
    publish: PublishStore,
    group: list[RunRow],
    built: Mapping[int, float],
    txts: list[tuple[float, dict[str, int]]],
) -> Propagation:
    targets = {r.run_id: publish.targets(r.run_id) for r in group}
    attempts = {r.run_id: publish.attempts(r.run_id) for r in group}
    mirrors = sorted({t.mirror for ts in targets.values() for t in ts})
    start = min(r.started_at for r in group)
    release = dict(group[0].expected)
    daily = release.get("daily")
    return propagation(
        group,
        targets,
        attempts,
        _first_seen(conn, mirrors, release, start),
        built_at=built.get(daily) if daily is not None else None,
        announced_at=announced(txts, release),
    )


def versions_text(versions: Mapping[str, int]) -> str:
    return json.dumps(dict(sorted(versions.items())))


def release_for(conn: sqlite3.Connection, versions: Mapping[str, int]) -> Propagation | None:
    """The propagation of the release whose versions the TXT announces as `versions` (its
    runs: those whose every expected version is the TXT's); None when no run pushed it."""
    publish = PublishStore(conn)
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
