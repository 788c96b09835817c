"""A seeded soak: repeated ``syncd publish`` runs to the fleet (``fleet.py``) with one fault per
round (``faults.py``), and every invariant (``invariants.py``) checked by code after each round.

Used by ``tests/faults`` (a few rounds) and ``python -m benchmarks.soak`` (many).

Every draw of round N comes from its own stream, ``random.Random(f"{seed}:{N}")``: the fault, the
victim, the delay and the fault's own choices of round N do not depend on the rounds before it,
so any round of any pass (the CI pass: ``CI_SEED``, ``CI_MIRRORS``) can be replayed alone.
"""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devtools.harness.faults import CvdReaders, RsyncOverlap, open_fds
from devtools.harness.soak import invariants, record
from devtools.harness.soak.faults import REGISTRY, Round
from devtools.harness.soak.fleet import Fleet

CI_SEED = 20261125
CI_MIRRORS = 3
FIRST_DAILY = 30000  # the release the fleet starts with; round N publishes FIRST_DAILY + N + 1


@dataclass
class RoundResult:
    number: int
    fault: str
    seconds: float
    run_id: str
    outcomes: dict[str, str]
    resumed: bool
    fired: str | None
    cvds_checked: int
    rsyncs_seen: int
    violations: list[str] = field(default_factory=list)


class SoakFleet(Fleet):
    """The fleet and its seeded rounds: the same seed replays the same faults in the same
    order, on the same victims, with the same delays."""

    def __init__(self, root: Path, mirrors: int, seed: int, *, log: Callable[[str], None] = print):
        super().__init__(root, mirrors, log=log)
        self.seed = seed
        self.rounds: list[RoundResult] = []

    def round_rng(self, number: int) -> random.Random:
        """Round `number`'s own stream of draws (victim, delay, the fault's choices)."""
        return random.Random(f"{self.seed}:{number}")

    def pick_fault(self, number: int, faults: tuple[str, ...]) -> str:
        """The fault of round `number`: the first pass covers every fault once, in an order
        shuffled by the seed; later rounds draw one from their own stream."""
        if number < len(faults):
            order = list(faults)
            random.Random(self.seed).shuffle(order)
            return order[number]
        return random.Random(f"{self.seed}:{number}:fault").choice(faults)

    def run_round(self, number: int, name: str) -> RoundResult:
        started = time.monotonic()
        fds_before = open_fds()
        rng = self.round_rng(number)
        self.daily = FIRST_DAILY + number + 1
        self._write_release(atomic=True)
        r = Round(
            victim=rng.choice(self.mirrors),
            delay=round(rng.uniform(0.0, 0.8), 2),
            runs_before=record.run_ids(self.state_db),
        )
        fault = REGISTRY[name](self)
        unavailable = fault.unavailable()
        if unavailable is not None:
            fault = REGISTRY["none"](self)  # labelled in the report
        fault.draw(rng)
        r.mark([m.proxy for m in self.mirrors] + self.rproxy)
        try:
            with (
                CvdReaders([m.web.base_url for m in self.mirrors]) as readers,
                RsyncOverlap(self.root / "mirrors") as overlap,
            ):
                fault.arm(r)
                proc = self.syncd("--source-tree", str(self.tree))
                r.procs.append(proc)
                fault.trigger(r)
                try:
                    out, err = proc.communicate(timeout=90)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    out, err = proc.communicate(timeout=10)
                    err += "\n[soak] syncd killed after 90 s"
                fault.heal(r)
        finally:
            for p in r.procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(10)
            fault.heal(r)
            self.restore()
        first = record.parse_json(out)
        run_id = first.get("run_id") or record.new_run_id(self.state_db, r.runs_before)
        violations = list(r.violations)
        resumed = False
        final = first
        if run_id and (proc.returncode != 0 or not first):
            resumed = True
            done_before = record.attempts(self.state_db, run_id, only_ok=True)
            dout, derr = fault.disturb_resume(r, run_id, rng)
            out, err = out + dout, err + derr
            rproc = self.syncd("--resume", run_id)
            rout, rerr = rproc.communicate(timeout=90)
            out, err = out + rout, err + rerr
            final = record.parse_json(rout)
            after = record.attempts(self.state_db, run_id, only_ok=False)
            violations += invariants.resume_redid(run_id, done_before, after)
            if rproc.returncode != 0:
                violations.append(
                    f"resumed run {run_id} did not finish ok (exit {rproc.returncode}): "
                    f"{record.summary_outcomes(final)} {rerr[-400:]}"
                )
        elif not run_id and proc.returncode < 0:
            # killed before it recorded anything: nothing to resume, so publish afresh
            resumed = True
            rproc = self.syncd("--source-tree", str(self.tree))
            rout, rerr = rproc.communicate(timeout=90)
            out, err, final = out + rout, err + rerr, record.parse_json(rout)
            run_id = final.get("run_id")
            if rproc.returncode != 0:
                violations.append(
                    f"fresh run after an early kill failed: {record.summary_outcomes(final)}"
                )
        elif not run_id:
            violations.append(f"no run recorded; syncd exit {proc.returncode}: {err[-400:]}")
        violations += invariants.after_round(self, run_id, final, out + err, fds_before)
        violations += invariants.observed(readers, overlap)
        evidence = fault.evidence(r)
        violations += invariants.fault_fired(fault.name, evidence)
        if violations:  # each says why, from the record: a CI log is enough to diagnose it
            why = record.diagnosis(self.state_db, run_id)
            violations = [f"{v}\n{why}" for v in violations]
        result = RoundResult(
            number,
            name if unavailable is None else f"{name} (unavailable: {unavailable})",
            round(time.monotonic() - started, 2),
            run_id or "",
            record.summary_outcomes(first),
            resumed,
            evidence,
            readers.checked,
            len(overlap.seen),
            violations,
        )
        self.rounds.append(result)
        return result
