"""The long soak: seeded, bounded rounds of ``syncd publish`` to real mirrors with random faults.

    python -m benchmarks.soak --rounds 60 --seed 7 [--mirrors 4] [--max-seconds 1800]

Prints its seed first; the same seed replays the same faults in the same order, on the same
victims, with the same delays (timing on a busy machine still varies). The first pass runs
every fault once; later rounds draw faults at random. Ends with a markdown summary (the table in
benchmarks/RELIABILITY.md) and exit status 1 when any invariant was violated.
Needs root for the tiny-tmpfs disk-full fault (labelled unavailable otherwise).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
from collections import Counter

from devtools.harness.soak import FAULTS, RoundResult, SoakFleet, soak_root


def summary(
    rounds: list[RoundResult], seed: int, mirrors: int, wall: float, tmpfs_error: str | None
) -> str:
    by_fault: dict[str, list[RoundResult]] = {}
    for r in rounds:
        by_fault.setdefault(r.fault.split(" ")[0], []).append(r)
    lines = [
        f"Seed {seed}, {mirrors} mirrors x {len(rounds)} rounds = "
        f"{mirrors * len(rounds)} mirror-publishes, {wall:.0f} s wall.",
        "",
        "| fault | rounds | applied | first-run outcomes (not ok) | resumed | CVDs read "
        "| violations |",
        "|---|---|---|---|---|---|---|",
    ]
    for fault in FAULTS:
        rs = by_fault.get(fault, [])
        if not rs:
            continue
        bad = Counter(o for r in rs for o in r.outcomes.values() if o != "ok")
        lines.append(
            f"| {fault} | {len(rs)} | {sum(1 for r in rs if r.fired)} | "
            f"{', '.join(f'{k} {v}' for k, v in sorted(bad.items())) or '-'} | "
            f"{sum(r.resumed for r in rs)} | {sum(r.cvds_checked for r in rs)} | "
            f"{sum(len(r.violations) for r in rs)} |"
        )
    total_v = sum(len(r.violations) for r in rounds)
    lines += [
        f"| **total** | {len(rounds)} | {sum(1 for r in rounds if r.fired)} | | "
        f"{sum(r.resumed for r in rounds)} | {sum(r.cvds_checked for r in rounds)} | "
        f"**{total_v}** |",
    ]
    if tmpfs_error:
        lines += ["", f"disk_full unavailable here: {tmpfs_error}"]
    for r in rounds:
        for v in r.violations:
            lines.append(f"- round {r.number} ({r.fault}): {v}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.soak", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--mirrors", type=int, default=4)
    ap.add_argument("--max-seconds", type=float, default=1800)
    ap.add_argument("--faults", default=",".join(FAULTS), help="comma-separated subset")
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    faults = tuple(f for f in args.faults.split(",") if f)
    unknown = set(faults) - set(FAULTS)
    if unknown:
        ap.error(f"unknown faults {sorted(unknown)}; known: {', '.join(FAULTS)}")
    print(f"soak seed {seed} (replay: python -m benchmarks.soak --seed {seed} ...)", flush=True)
    root = soak_root()
    fleet = SoakFleet(root, args.mirrors, seed)
    started = time.monotonic()
    try:
        fleet.start()
        for number in range(args.rounds):
            if time.monotonic() - started > args.max_seconds:
                print(f"time bound of {args.max_seconds:.0f} s reached", flush=True)
                break
            r = fleet.run_round(number, fleet.pick_fault(number, faults))
            print(
                f"round {r.number:3d} {r.fault:14s} {r.seconds:6.2f} s "
                f"not-ok={sorted(n for n, o in r.outcomes.items() if o != 'ok')} "
                f"resumed={r.resumed} violations={len(r.violations)}",
                flush=True,
            )
            for v in r.violations:
                print(f"    VIOLATION {v}", flush=True)
        wall = time.monotonic() - started
        print()
        print(summary(fleet.rounds, seed, args.mirrors, wall, fleet.tmpfs_error))
    finally:
        fleet.close()
        shutil.rmtree(root, ignore_errors=True)
    return 1 if any(r.violations for r in fleet.rounds) else 0


if __name__ == "__main__":
    sys.exit(main())
