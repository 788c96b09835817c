"""A seeded soak: repeated ``syncd publish`` runs to the fleet (``fleet.py``) with one fault per
round (``faults.py``), and every invariant (``invariants.py``) checked by code after each round.

Used by ``tests/faults`` (a few rounds) and ``python -m benchmarks.soak`` (many).
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
        self.rng = random.Random(seed)
        self.rounds: list[RoundResult] = []

    def pick_fault(self, number: int, faults: tuple[str, ...]) -> str:
        if number < len(faults):  # the first pass covers every fault once, in seeded order
            if number == 0:
                self._order = list(faults)
                self.rng.shuffle(self._order)
            return self._order[number]
        return self.rng.choice(faults)

    def run_round(self, number: int, name: str) -> RoundResult:
        started = time.monotonic()
        fds_before = open_fds()
        self.daily += 1
        self._write_release(atomic=True)
        r = Round(
            victim=self.rng.choice(self.mirrors),
            delay=round(self.rng.uniform(0.0, 0.8), 2),
            runs_before=record.run_ids(self.state_db),
        )
        fault = REGISTRY[name](self)
        unavailable = fault.unavailable()
        if unavailable is not None:
            fault = REGISTRY["none"](self)  # labelled in the report
        fault.draw(self.rng)
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
            dout, derr = fault.disturb_resume(r, run_id, self.rng)
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
        result = RoundResult(
            number,
            name if unavailable is None else f"{name} (unavailable: {unavailable})",
            round(time.monotonic() - started, 2),
            run_id or "",
            record.summary_outcomes(first),
            resumed,
            fault.evidence(r),
            readers.checked,
            len(overlap.seen),
            violations,
        )
        self.rounds.append(result)
        return result
