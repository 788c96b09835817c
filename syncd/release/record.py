"""The record read into `syncd.release.propagation`: the release runs, their targets and
attempts, the monitor's first sight of each release per mirror and family, the TXT changes
sent, the build times. Read-only; one connection, passed in."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence

from syncd.dns.plan import TXT_NAME, DnsSafetyError, TxtRecord
from syncd.publish.outcome import RunRow
from syncd.publish.store import PublishStore
from syncd.release.propagation import Propagation, announced, group_runs, propagation
from syncd.release.store import ReleaseStore

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
    """Per mirror of `mirrors`, per address family checked at or after `since`, its first check
    that saw every database of `release` at least at its version (None: none did). Each answer
    is one index walk (monitor_checks (mirror, at)) that stops at the first row found, and
    SQLite reads the versions (json_extract): a month of checks is never decoded in Python."""
    if not {"monitor_checks", "monitor_state"} <= _tables(conn) or not mirrors:
        return {}
    dbs = sorted(release)
    cond = " AND CAST(json_extract(versions, ?) AS INTEGER) >= ?" * len(dbs)
    wants = [x for db in dbs for x in (f'$."{db}"', int(release[db]))]
    first_check = (
        "SELECT at FROM monitor_checks WHERE mirror = ? AND family = ? AND at >= ? "
        "ORDER BY at LIMIT 1"
    )
    first_serving = (
        "SELECT at FROM monitor_checks WHERE mirror = ? AND family = ? AND at >= ? AND ok = 1 "  # noqa: S608 (only ?s)
        "AND versions IS NOT NULL" + cond + " ORDER BY at LIMIT 1"
    )
    out: dict[str, dict[str, float | None]] = {}
    for mirror in mirrors:
        # the families it was ever judged on (monitor_state's key): no scan of its checks
        families = [
            r[0]
            for r in conn.execute("SELECT family FROM monitor_state WHERE mirror = ?", (mirror,))
        ]
        for family in families:
            if conn.execute(first_check, (mirror, family, since)).fetchone() is None:
                continue  # not checked on this family since the publish began
            row = conn.execute(first_serving, (mirror, family, since, *wants)).fetchone()
            out.setdefault(mirror, {})[family] = None if row is None else float(row[0])
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
        _first_seen(conn, unproven, release, start),
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
