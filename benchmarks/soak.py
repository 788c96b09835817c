"""The long soak: seeded, bounded rounds of ``syncd publish`` to real mirrors with random faults.

    python -m benchmarks.soak --rounds 60 --seed 7 [--mirrors 4] [--max-seconds 1800]
    python -m benchmarks.soak --replay 20261125:1        # round 1 of the CI pass, alone
    python -m benchmarks.soak --replay 20261125:0-1      # rounds 0 and 1 of it, in order

Prints its seed first; the same seed replays the same faults in the same order, on the same
victims, with the same delays (timing on a busy machine still varies): round N draws from its
own stream (seed, N), so a round replays alone. The first pass runs every fault once; later
rounds draw faults at random. ``--replay SEED:N[-M]`` runs rounds N to M of that seed on a fleet
of the CI pass's size (3 mirrors, unless --mirrors), every fault eligible: the CI pass's rounds.
Ends with a markdown summary (the table in benchmarks/RELIABILITY.md) and exit status 1 when any
invariant was violated or a fault did not fire. Needs root for the tiny-tmpfs disk-full fault
(labelled unavailable otherwise).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
from collections import Counter

from devtools.harness.soak import CI_MIRRORS, FAULTS, RoundResult, SoakFleet, soak_root

LONG_MIRRORS = 4


def replay_range(text: str) -> tuple[int, range]:
    """Given ``SEED:N`` or ``SEED:N-M``, return the seed and the rounds; raise ValueError."""
    seed, _, rounds = text.partition(":")
    first, dash, last = rounds.partition("-")
    if not (seed.isdigit() and first.isdigit() and (last.isdigit() or not dash)):
        raise ValueError(f"--replay {text!r}: expected SEED:ROUND or SEED:FIRST-LAST, e.g. 7:3-5")
    end = int(last) if last else int(first)
    if end < int(first):
        raise ValueError(f"--replay {text!r}: the last round comes before the first")
    return int(seed), range(int(first), end + 1)


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
        "| fault | rounds | applied | first-run outcomes (not ok) | resumed | files read whole "
        "| violations |",
        "|---|---|---|---|---|---|---|",
    ]
    for fault in FAULTS:
        rs = by_fault.get(fault, [])
        if not rs:
            continue
        bad = Counter(o for r in rs for o in r.outcomes.values() if o != "ok")
        applied = "-" if fault == "none" else sum(1 for r in rs if r.fired)
        lines.append(
            f"| {fault} | {len(rs)} | {applied} | "
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
            lines.append(f"- round {r.number} ({r.fault}): " + v.replace("\n", "\n  "))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.soak", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument(
        "--mirrors", type=int, default=None, help=f"default {LONG_MIRRORS}; {CI_MIRRORS} to replay"
    )
    ap.add_argument("--max-seconds", type=float, default=1800)
    ap.add_argument("--faults", default=",".join(FAULTS), help="comma-separated subset")
    ap.add_argument(
        "--replay",
        metavar="SEED:N[-M]",
        help="run rounds N..M of SEED as that pass ran them (the CI pass: its seed, 3 mirrors)",
    )
    args = ap.parse_args(argv)
    faults = tuple(f for f in args.faults.split(",") if f)
    unknown = set(faults) - set(FAULTS)
    if unknown:
        ap.error(f"unknown faults {sorted(unknown)}; known: {', '.join(FAULTS)}")
    if args.replay:
        try:
            seed, numbers = replay_range(args.replay)
        except ValueError as err:
            ap.error(str(err))
        mirrors = args.mirrors or CI_MIRRORS
    else:
        seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
        numbers, mirrors = range(args.rounds), args.mirrors or LONG_MIRRORS
    print(
        f"soak seed {seed}, {mirrors} mirrors (replay a round: python -m benchmarks.soak "
        f"--replay {seed}:N --mirrors {mirrors})",
        flush=True,
    )
    root = soak_root()
    fleet = SoakFleet(root, mirrors, seed)
    started = time.monotonic()
    try:
        fleet.start()
        for number in numbers:
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
            print(f"    fired: {r.fired}", flush=True)
            for v in r.violations:
                print(f"    VIOLATION {v}", flush=True)
        wall = time.monotonic() - started
        print()
        print(summary(fleet.rounds, seed, mirrors, wall, fleet.tmpfs_error))
    finally:
        fleet.close()
        shutil.rmtree(root, ignore_errors=True)
    return 1 if any(r.violations for r in fleet.rounds) else 0


if __name__ == "__main__":
    sys.exit(main())
