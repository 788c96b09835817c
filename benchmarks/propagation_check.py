"""The record's propagation figures against the disks: after a served run (``benchmarks.served
--check-propagation``), what ``syncd releases`` computes from syncd's record (the same code,
``syncd.release.record.read_releases``) set beside what the benchmark saw on the mirrors' disks.

Both are unix times of the same machine, both taken from the same origin: the publish run's
start as the record holds it. Per mirror the record's *served* time is when syncd recorded the
client's ok report; the disk time is the first poll that found the new daily.cvd. So the record
is later than the disk by the client's own tail (verifying what it serves, its report, the SSH
channel's end, the record's write), and may look earlier only by the poller's lag (the file
landed up to one poll period before the poll that saw it). A mirror beyond either bound, a
mirror served on one side and not on the other, or a quantile of the record that is not its
own per-mirror times' nearest rank, is flagged.

`compare` is pure (tests/bench/test_propagation_check.py); `from_record` reads the record.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

QUANTILES = (50, 90, 99, 100)


def nearest_rank(times: list[float], total: int, q: int) -> float | None:
    """The first time by which `q` per cent of `total` mirrors had served (the nearest-rank
    quantile), None when fewer served. Written apart from syncd's own quantiles: it checks
    them."""
    ordered = sorted(times)
    for k, t in enumerate(ordered, start=1):
        if k * 100 >= q * total:
            return t
    return None


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def compare(
    record: Mapping[str, float | None],
    record_quantiles: Mapping[int, float | None],
    disk: Mapping[str, float | None],
    start: float,
    *,
    early_s: float,
    late_s: float,
    client_end: Mapping[str, float | None] | None = None,
) -> dict[str, Any]:
    """Given each mirror's served time in the record (unix; None: missing) and the quantiles
    the record computed from `start` (seconds), each mirror's time on disk (unix; None: never
    served), the publish's start (unix) and the bounds (the record may be at most `early_s`
    earlier and `late_s` later than the disk) and, when known, when each client says it
    finished (its report's ``finished_at``, unix: a mirror's record may then be later by that
    client's own tail after the file landed, plus `late_s`), return the comparison: per
    quantile the record's, the disk's and their difference, the per-mirror differences
    (record minus disk; the client's tail, client end minus disk; the delivery, record minus
    client end: min, median, p90, max), and every finding."""
    ends = client_end or {}
    findings: list[str] = []
    mirrors = sorted(set(record) | set(disk))
    only_record = sorted(m for m in mirrors if m not in disk)
    only_disk = sorted(m for m in mirrors if m not in record)
    findings += [f"{m}: in the record, not among the benchmark's mirrors" for m in only_record]
    findings += [f"{m}: a benchmark mirror the record does not count" for m in only_disk]
    deltas: dict[str, float] = {}
    tails: list[float] = []
    deliveries: list[float] = []
    for m in mirrors:
        r, d = record.get(m), disk.get(m)
        if m in only_record or m in only_disk:
            continue
        if r is None and d is not None:
            findings.append(f"{m}: served on disk at {d - start:.3f} s, missing in the record")
        elif r is not None and d is None:
            findings.append(f"{m}: served in the record at {r - start:.3f} s, never on disk")
        elif r is not None and d is not None:
            deltas[m] = r - d
            end = ends.get(m)
            tail = 0.0 if end is None else max(0.0, end - d)
            if end is not None:
                tails.append(end - d)
                deliveries.append(r - end)
            if r - d < -early_s:
                findings.append(
                    f"{m}: the record is {d - r:.3f} s earlier than the disk (bound {early_s:g} s)"
                )
            elif r - d > late_s + tail:
                findings.append(
                    f"{m}: the record is {r - d:.3f} s later than the disk "
                    f"(bound {late_s:g} s after the client's end, {tail:.3f} s after the disk)"
                )
    total = len(record)
    rec_times = [t - start for t in record.values() if t is not None]
    disk_times = [t - start for t in disk.values() if t is not None]
    highs = [
        t - start + late_s + max(0.0, (ends.get(m) or t) - t)
        for m, t in disk.items()
        if t is not None
    ]
    rows = []
    for q in QUANTILES:
        got = record_quantiles.get(q)
        own = nearest_rank(rec_times, total, q)
        own = None if own is None else max(0.0, own)
        on_disk = nearest_rank(disk_times, len(disk), q)
        if (got is None) != (own is None) or (
            got is not None and own is not None and abs(got - own) > 0.001
        ):
            findings.append(
                f"t{q}: the record says {_round(got)} s, its own mirrors' times "
                f"give {_round(own)} s"
            )
        diff = None if got is None or on_disk is None else got - on_disk
        # each mirror's record within its bounds puts the quantile within theirs
        lo = nearest_rank([t - early_s for t in disk_times], len(disk), q)
        hi = nearest_rank(highs, len(disk), q)
        if got is not None and lo is not None and hi is not None and not lo <= got <= hi:
            findings.append(
                f"t{q}: the record's {got:.3f} s is off the disk's {on_disk:.3f} s "
                f"(bounds {lo:.3f} to {hi:.3f} s)"
            )
        elif (got is None) != (on_disk is None):
            findings.append(f"t{q}: the record says {_round(got)} s, the disk {_round(on_disk)} s")
        rows.append(
            {
                "q": q,
                "record_s": _round(got),
                "disk_s": _round(on_disk),
                "record_minus_disk_s": _round(diff),
            }
        )
    values = sorted(deltas.values())

    def spread(xs: list[float]) -> dict[str, float | None]:
        xs = sorted(xs)
        if not xs:
            return {"min": None, "median": None, "p90": None, "max": None}
        return {
            "min": _round(xs[0]),
            "median": _round(statistics.median(xs)),
            "p90": _round(nearest_rank(xs, len(xs), 90)),
            "max": _round(xs[-1]),
        }

    return {
        "mirrors": len(mirrors),
        "record_active": total,
        "record_served": len(rec_times),
        "disk_served": len(disk_times),
        "bounds_s": {"early": round(early_s, 3), "late": round(late_s, 3)},
        "quantiles": rows,
        "per_mirror_s": spread(values),
        "client_tail_s": spread(tails),
        "delivery_s": spread(deliveries),
        "findings": findings,
    }


def table(result: Mapping[str, Any]) -> str:
    """The comparison as a short text table: per quantile, then the per-mirror spread and the
    findings."""
    lines = ["quantile  record s  disk s  record - disk s"]
    for row in result["quantiles"]:
        lines.append(
            f"t{row['q']:<8} {row['record_s']!s:>8} {row['disk_s']!s:>7} "
            f"{row['record_minus_disk_s']!s:>16}"
        )
    for key, what in (
        ("per_mirror_s", "record - disk"),
        ("client_tail_s", "client end - disk"),
        ("delivery_s", "record - client end"),
    ):
        sp = result[key]
        lines.append(
            f"per mirror, {what}: min {sp['min']} s, median {sp['median']} s, "
            f"p90 {sp['p90']} s, max {sp['max']} s"
        )
    lines.append(
        f"bounds: {result['bounds_s']['early']} s earlier (the poller's lag), "
        f"{result['bounds_s']['late']} s later than the client's end"
    )
    lines += [f"  ! {f}" for f in result["findings"]] or ["  no finding"]
    return "\n".join(lines)


def _unix(stamp: object) -> float | None:
    """A report's RFC 3339 time as unix seconds (None: absent or not a time)."""
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def from_record(
    db: Path, run_id: str
) -> tuple[float, dict[str, float | None], dict[int, Any], dict[str, float | None]]:
    """The release run `run_id` pushed, as ``syncd releases`` reads it from the record `db`:
    its start (unix), each targeted mirror's served time (unix; None: missing), the quantiles
    from the start, and when each ok client said it finished (its report). Raises ValueError
    when the release is not that run alone (an earlier run of the same versions makes one
    release of both, from the first start)."""
    from syncd.publish.store import PublishStore
    from syncd.release.record import read_releases
    from syncd.sqlite import open_db

    conn = open_db(db)
    try:
        releases = read_releases(conn)
        ends = {
            t.mirror: _unix(t.report.get("finished_at"))
            for t in PublishStore(conn).targets(run_id)
            if t.outcome == "ok" and isinstance(t.report, dict)
        }
    finally:
        conn.close()
    prop = next((p for p in releases if run_id in p.runs), None)
    if prop is None:
        raise ValueError(f"{db}: no release of run {run_id} in the record")
    if prop.runs != (run_id,):
        raise ValueError(
            f"{db}: the release of run {run_id} holds {len(prop.runs)} runs: "
            "check a record with one run (no --warmup, --reps 1)"
        )
    served = {s.mirror: s.at for s in prop.mirrors}
    return prop.started_at, served, dict(prop.from_start.seconds), ends


def check(
    db: Path, run_id: str, disk: Mapping[str, float | None], *, early_s: float, late_s: float
) -> dict[str, Any]:
    """Read the record `db` and compare run `run_id`'s release with `disk` (unix times)."""
    start, served, quantiles, ends = from_record(db, run_id)
    out = compare(served, quantiles, disk, start, early_s=early_s, late_s=late_s, client_end=ends)
    out["run_id"] = run_id
    out["started_at"] = start
    out["inputs"] = {  # what was compared, to compare again (main)
        "record": served,
        "quantiles": {str(q): v for q, v in quantiles.items()},
        "disk": dict(disk),
        "client_end": ends,
    }
    return out


def again(result: Mapping[str, Any]) -> dict[str, Any]:
    """A stored comparison (`check`'s result) compared again from its inputs."""
    inputs = result["inputs"]
    bounds = result["bounds_s"]
    return compare(
        inputs["record"],
        {int(q): v for q, v in inputs["quantiles"].items()},
        inputs["disk"],
        float(result["started_at"]),
        early_s=float(bounds["early"]),
        late_s=float(bounds["late"]),
        client_end=inputs["client_end"],
    )


def main() -> None:
    """Print the comparisons a served run stored (``--check-propagation --out FILE``), compared
    again from their inputs."""
    import argparse
    import json
    import sys

    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.propagation_check",
        description="The record's propagation against the disks, from a served run's JSON.",
    )
    ap.add_argument("results", type=Path, help="benchmarks.served --check-propagation --out FILE")
    args = ap.parse_args()
    try:
        doc = json.loads(args.results.read_text())
    except (OSError, ValueError) as e:
        sys.exit(f"{args.results}: not a served run's JSON ({e}): give its --out file")
    runs = [r for r in doc.get("runs", []) if isinstance(r.get("propagation"), dict)]
    if not runs:
        sys.exit(f"{args.results}: no comparison in it: run served with --check-propagation")
    for r in runs:
        print(f"N={r['n']} {r['contender']}")
        print(table(again(r["propagation"])))


if __name__ == "__main__":
    main()
