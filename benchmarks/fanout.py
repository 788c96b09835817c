"""Fan-out benchmark: syncd publish side by side with what a team would otherwise use.

    .venv/bin/python -m benchmarks.fanout --n 100 500 1000 --reps 3 [--fault-rate 0.3]

For each N it builds a simulated fleet (``devtools/harness/simfleet.py``), then runs every
contender on it in alternating order, ``--reps`` times, and reports medians: wall time to the
last outcome, time until 50/95/99 % of mirrors are ok (from the fleet's own event log), client
CPU seconds per mirror and peak RSS (``wait4`` of the contender's process, its children
included), and whether every outcome was right. Ratios are against the pure-asyncio floor (c)
and the sequential ssh loop (a), measured in the same run on the same fleet.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.harness.simfleet import EXPECTED, Fleet, expect_args, make

ROOT = Path(__file__).resolve().parent.parent
CONTENDERS = ("ssh-loop", "xargs", "asyncio", "pssh", "syncd")
RETRYING = {"syncd"}  # contenders that retry and poll queued mirrors
# the same per-phase timeouts for every contender (benchmarks/contenders.py reads these too)
CONNECT_TIMEOUT = float(os.environ.setdefault("BENCH_CONNECT_TIMEOUT", "10"))
COMMAND_TIMEOUT = float(os.environ.setdefault("BENCH_COMMAND_TIMEOUT", "30"))
SYNCD_POLICY: dict[str, str] = {}  # --syncd-policy KEY=VALUE, for sweeps


@dataclass
class RunResult:
    contender: str
    n: int
    wall_s: float
    cpu_s: float
    maxrss_mb: float
    t50_s: float | None
    t95_s: float | None
    t99_s: float | None
    wrong: int
    wrong_examples: dict[str, list[str]] = field(default_factory=dict)


def expected(fault: str | None, contender: str) -> str:
    if contender not in RETRYING and fault == "fail_first":
        return "failed"
    return EXPECTED[fault]


def _command(
    contender: str, fleet: Path, out: Path, run_id: str, bound: int, state: Path
) -> list[str]:
    inv, key = str(fleet / "inventory.toml"), str(fleet / "pusher_ed25519")
    if contender == "syncd":
        config = state.with_name("syncd.toml")
        policy = {
            "connect_timeout": CONNECT_TIMEOUT,
            "login_timeout": CONNECT_TIMEOUT,
            "command_timeout": COMMAND_TIMEOUT,
            "http_check": "false",
            **SYNCD_POLICY,
        }
        config.write_text("[policy]\n" + "".join(f"{k} = {v}\n" for k, v in policy.items()))
        return [
            str(ROOT / ".venv" / "bin" / "syncd"),
            "publish",
            "--config",
            str(config),
            "--inventory",
            inv,
            "--key",
            key,
            "--state",
            str(state),
            *expect_args(),
            "--json",
        ]
    return [
        sys.executable,
        "-m",
        "benchmarks.contenders",
        contender,
        "--inventory",
        inv,
        "--key",
        key,
        "--bound",
        str(bound),
        "--out",
        str(out),
        "--run-id",
        run_id,
    ]


def _percentiles(fleet: Path, run_id: str, start: float, n: int) -> list[float | None]:
    times = []
    for log in fleet.glob("events-*.log"):
        for line in log.read_text().splitlines():
            t, rid, _ = line.split(" ", 2)
            if rid == run_id:
                times.append(float(t) - start)
    times.sort()
    result: list[float | None] = []
    for q in (0.50, 0.95, 0.99):
        k = max(1, round(q * n))
        result.append(round(times[k - 1], 3) if len(times) >= k else None)
    return result


class _TreePeak:
    """Peak of the summed RSS of a process and all its descendants, sampled every 20 ms.

    (``ru_maxrss`` from wait4 would include the parent's size at fork time.)
    """

    def __init__(self, pid: int) -> None:
        import threading

        import psutil

        self.bytes = 0
        self._done = threading.Event()
        self._root = psutil.Process(pid)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import psutil

        while not self._done.wait(0.02):
            total = 0
            try:
                for p in [self._root, *self._root.children(recursive=True)]:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        continue
            except psutil.Error:
                return
            self.bytes = max(self.bytes, total)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def run_one(
    contender: str,
    fleet: Path,
    n: int,
    bound: int,
    faults: dict[str, str | None],
    extra_env: dict[str, str],
) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="fanout-") as tmp:
        out, state = Path(tmp) / "out.json", Path(tmp) / "state.sqlite"
        run_id = f"bench-{uuid.uuid4().hex[:12]}"
        argv = _command(contender, fleet, out, run_id, bound, state)
        start = time.time()
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            env={**os.environ, **extra_env},
        )
        peak = _TreePeak(proc.pid)
        stdout = proc.stdout.read() if proc.stdout else b""
        peak.stop()
        _, _status, usage = os.wait4(proc.pid, 0)
        wall = time.time() - start
        outcomes: dict[str, str]
        if contender == "syncd":
            doc = json.loads(stdout or b"{}")
            run_id = str(doc.get("run_id", run_id))
            outcomes = {m["name"]: m["outcome"] for m in doc.get("mirrors", [])}
        else:
            outcomes = json.loads(out.read_text())["outcomes"] if out.exists() else {}
    wrong: dict[str, list[str]] = {}
    for name, fault in faults.items():
        got, want = outcomes.get(name, "missing"), expected(fault, contender)
        if got != want:
            wrong.setdefault(f"{fault}: want {want}, got {got}", []).append(name)
    t50, t95, t99 = _percentiles(fleet, run_id, start, n)
    return RunResult(
        contender,
        n,
        round(wall, 3),
        round(usage.ru_utime + usage.ru_stime, 3),
        round(peak.bytes / 2**20, 1),
        t50,
        t95,
        t99,
        sum(len(v) for v in wrong.values()),
        {k: v[:3] for k, v in wrong.items()},
    )


def median_of(runs: list[RunResult]) -> dict[str, Any]:
    def med(attr: str) -> float | None:
        values = [getattr(r, attr) for r in runs if getattr(r, attr) is not None]
        return round(statistics.median(values), 3) if values else None

    first = runs[0]
    return {
        "contender": first.contender,
        "n": first.n,
        "reps": len(runs),
        "wall_s": med("wall_s"),
        "cpu_s": med("cpu_s"),
        "cpu_ms_per_mirror": round(1000 * (med("cpu_s") or 0) / first.n, 2),
        "maxrss_mb": med("maxrss_mb"),
        "t50_s": med("t50_s"),
        "t95_s": med("t95_s"),
        "t99_s": med("t99_s"),
        "wrong": max(r.wrong for r in runs),
        "wrong_examples": next((r.wrong_examples for r in runs if r.wrong), {}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.fanout")
    ap.add_argument("--n", type=int, nargs="+", default=[100, 500, 1000])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    ap.add_argument(
        "--seq-max-n",
        type=int,
        default=100,
        help="run the sequential ssh loop only up to this N (it is minutes at 1000)",
    )
    ap.add_argument("--bound", type=int, default=100, help="concurrency bound for (b), (c), (d)")
    ap.add_argument("--fault-rate", type=float, default=0.0)
    ap.add_argument("--rtt-ms", type=float, nargs=2, default=(0.0, 0.0))
    ap.add_argument("--rsync-s", type=float, nargs=2, default=(0.0, 0.0))
    ap.add_argument("--fleet-procs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--syncd-policy",
        nargs="*",
        default=[],
        help="[policy] overrides for syncd, KEY=VALUE (TOML values)",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "fanout.json")
    args = ap.parse_args()
    SYNCD_POLICY.update(kv.split("=", 1) for kv in args.syncd_policy)
    results: list[dict[str, Any]] = []
    for n in args.n:
        work = Path(tempfile.mkdtemp(prefix=f"fleet-{n}-"))
        try:
            make(work, n, args.seed, args.fault_rate, tuple(args.rtt_ms), tuple(args.rsync_s))
            profiles = json.loads((work / "profiles.json").read_text())
            faults = {p["name"]: p["fault"] for p in profiles}
            slowest = max(p["rtt_ms"] * 9 / 1000 + p["rsync_s"] for p in profiles)
            names = [c for c in args.contenders if c != "ssh-loop" or n <= args.seq_max_n]
            runs: dict[str, list[RunResult]] = {c: [] for c in names}
            with Fleet(work, args.fleet_procs):
                for rep in range(args.reps):
                    order = names if rep % 2 == 0 else list(reversed(names))
                    for c in order:
                        r = run_one(c, work, n, args.bound, faults, {})
                        runs[c].append(r)
                        print(
                            f"N={n} rep={rep} {c}: wall {r.wall_s}s cpu {r.cpu_s}s "
                            f"rss {r.maxrss_mb}MB wrong {r.wrong}",
                            file=sys.stderr,
                            flush=True,
                        )
            for c in names:
                row = median_of(runs[c])
                row["slowest_mirror_path_s"] = round(slowest, 3)
                results.append(row)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "machine": machine(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "results": results,
    }
    args.out.write_text(json.dumps(doc, indent=1))
    print(table(results))


def machine() -> dict[str, Any]:
    import platform

    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def table(results: list[dict[str, Any]]) -> str:
    """Markdown table with ratios against (c) asyncio and (a) the ssh loop of the same N."""
    head = (
        "| N | contender | wall s | t50 s | t95 s | t99 s | CPU ms/mirror | peak RSS MB | "
        "wrong | wall / asyncio | CPU / asyncio | ssh-loop / wall |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in results:
        base = next((x for x in results if x["n"] == r["n"] and x["contender"] == "asyncio"), None)
        seq = next((x for x in results if x["n"] == r["n"] and x["contender"] == "ssh-loop"), None)

        def ratio(a: float | None, b: float | None) -> str:
            return f"{a / b:.2f}" if a and b else "-"

        lines.append(
            f"| {r['n']} | {r['contender']} | {r['wall_s']} | {r['t50_s']} | {r['t95_s']} | "
            f"{r['t99_s']} | {r['cpu_ms_per_mirror']} | {r['maxrss_mb']} | {r['wrong']} | "
            f"{ratio(r['wall_s'], base and base['wall_s'])} | "
            f"{ratio(r['cpu_ms_per_mirror'], base and base['cpu_ms_per_mirror'])} | "
            f"{ratio(seq and seq['wall_s'], r['wall_s'])} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
