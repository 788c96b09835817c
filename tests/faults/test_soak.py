"""The short, CI form of the soak: every fault once, in an order drawn from the seed, against
three real mirrors; every invariant checked by code after each round (see
devtools/harness/soak/). The long form is ``python -m benchmarks.soak``."""

from __future__ import annotations

import time

from devtools.harness.faults import is_mounted
from devtools.harness.soak import FAULTS, SoakFleet


def test_every_fault_once_keeps_every_invariant(soak_fleet: SoakFleet) -> None:
    started = time.monotonic()
    for number in range(len(FAULTS)):
        fault = soak_fleet.pick_fault(number, FAULTS)
        result = soak_fleet.run_round(number, fault)
        print(
            f"round {number} {result.fault}: {result.seconds} s {result.outcomes}"
            f" resumed={result.resumed} fired={result.fired!r} cvds={result.cvds_checked}"
        )
        # a fault that did not fire is a violation too (rounds.py): every round proves something
        assert result.violations == [], "\n".join(
            [f"seed {soak_fleet.seed} round {number} {fault}:", *result.violations]
        )
    rounds = soak_fleet.rounds
    assert {r.fault.split(" ")[0] for r in rounds} == set(FAULTS)
    # the faults really happened, by their own counters this round (or the signal they sent)
    judged = [r for r in rounds if r.fault != "none" and "(unavailable" not in r.fault]
    assert all(r.fired for r in judged), [(r.fault, r.fired) for r in judged]
    assert sum(r.cvds_checked for r in rounds) > 100  # the readers really read
    # ~60 s on 2 vCPU, ~90 s under libfaketime (every clock read intercepted); bounded, not a
    # benchmark: the bound says the pass ends by itself, with room for a loaded machine
    assert time.monotonic() - started < 240
    if soak_fleet.tmpfs is not None:
        tmpfs = soak_fleet.tmpfs
        soak_fleet.close()
        assert not is_mounted(tmpfs)  # the tiny disk is gone with the fleet
