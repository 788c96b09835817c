"""Measure syncd's CPU time per mirror for one publish to N fast simulated mirrors.

    .venv/bin/python -m benchmarks.publish_cpu [--mirrors 100] [--runs 3] [--write]

The mirrors are the simulated fleet (``devtools/harness/simfleet.py``: no latency, no faults,
no rsync time) served by one separate process on loopback, each on its own address with its
own ed25519 host key, authorizing the pusher key and answering at once with a valid report
showing the release. syncd runs in this process exactly as ``syncd publish`` does
(``publish_main``: the record in SQLite, pinned host keys, trio with asyncssh on its
worker-thread loop, the fan-out);
its CPU time (user + system, all threads) is read with ``time.process_time()`` around that call,
so interpreter start-up and imports are not counted. With --write, the figures go to
benchmarks/PUBLISH.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncssh
import trio

from devtools.harness import simfleet
from syncd.inventory.model import parse_inventory
from syncd.publish.config import Policy
from syncd.publish.job import PublishJob, publish_main
from syncd.publish.outcome import PushOutcome

ROOT = Path(__file__).resolve().parent.parent

RELEASE = dict(simfleet.RELEASE)


def measure_once(workdir: Path, key: Path, inventory_text: str) -> tuple[float, float, int]:
    """Run one publish; return (CPU seconds, wall seconds, mirrors ok)."""
    state = workdir / f"state-{time.monotonic_ns()}.sqlite"
    job = PublishJob(
        key=key,
        state=state,
        inventory=parse_inventory(inventory_text, "bench-inventory.toml"),
        inventory_path="bench-inventory.toml",
        policy=Policy(handshake_concurrency=100, http_check=False),
        expected=dict(RELEASE),
    )
    cpu0, wall0 = time.process_time(), time.perf_counter()
    outcome = trio.run(publish_main, job, None)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    ok = sum(r.outcome is PushOutcome.OK for r in outcome.results)
    return cpu, wall, ok


def measure_cli(workdir: Path, key: Path, inventory_text: str) -> tuple[float, int]:
    """Run ``syncd publish`` as its own process; return its CPU seconds (start-up included)
    and its exit code."""
    inventory = workdir / "inventory.toml"
    inventory.write_text(inventory_text)
    config = workdir / "syncd.toml"
    config.write_text(
        f'key = "{key}"\ninventory = "{inventory}"\nstate = "{workdir / "cli.sqlite"}"\n'
        "[policy]\nhandshake_concurrency = 100\nhttp_check = false\n"
    )
    expect = [f"--expect={db}={v}" for db, v in RELEASE.items()]
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncd", "publish", "--config", str(config), "--json", *expect],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.publish_cpu", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--mirrors", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="write benchmarks/PUBLISH.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        work = Path(tmp)
        inventory = simfleet.make(work / "fleet", args.mirrors, 1, 0.0, (0.0, 0.0), (0.0, 0.0))
        inventory_text = inventory.read_text()
        key = work / "fleet" / "pusher_ed25519"
        with simfleet.Fleet(work / "fleet", 1):
            measure_once(work, key, inventory_text)  # warm-up: caches, first-run costs
            runs = [measure_once(work, key, inventory_text) for _ in range(args.runs)]
            cli_cpu, cli_code = measure_cli(work, key, inventory_text)
    for cpu, wall, ok in runs:
        print(
            f"{args.mirrors} mirrors: {ok} ok, CPU {cpu * 1000:.0f} ms "
            f"({cpu * 1000 / args.mirrors:.1f} ms/mirror), wall {wall:.2f} s"
        )
    cpu_ms = statistics.median(r[0] for r in runs) * 1000 / args.mirrors
    wall_s = statistics.median(r[1] for r in runs)
    if any(ok != args.mirrors for _, _, ok in runs):
        print("not every mirror ended ok: the figure is not comparable", file=sys.stderr)
        return 1
    print(f"syncd CPU per mirror (median of {args.runs}): {cpu_ms:.1f} ms; wall {wall_s:.2f} s")
    print(
        f"whole 'syncd publish' process (start-up and imports included): {cli_cpu * 1000:.0f} ms"
        f" CPU, exit {cli_code}"
    )
    if args.write:
        write_report(args.mirrors, args.runs, runs, cpu_ms, wall_s, cli_cpu)
    return 0


def write_report(
    mirrors: int,
    count: int,
    runs: list[tuple[float, float, int]],
    cpu_ms: float,
    wall_s: float,
    cli_cpu: float,
) -> None:
    lines = [
        "# syncd publish: CPU per mirror",
        "",
        "Written by `python -m benchmarks.publish_cpu --write`; rerun it after changes to the"
        " fan-out.",
        "",
        f"One publish to {mirrors} simulated mirrors (`devtools/harness/simfleet.py`: asyncssh"
        " servers in a separate process on loopback, each on its own address with its own"
        " ed25519 host key, answering at once with a valid report). syncd runs in-process as"
        " `syncd publish` does: record in SQLite (WAL), pinned host keys, trio with asyncssh on"
        " its worker-thread loop, handshake bound 100, no HTTP proof. CPU is"
        " `time.process_time()` (user + system, all threads) around `publish_main`; interpreter"
        " start-up and imports are excluded. One warm-up run, then the median of"
        f" {count}.",
        "",
        f"**syncd CPU per mirror: {cpu_ms:.1f} ms** (wall for the whole publish: {wall_s:.2f} s)",
        "",
        "| run | CPU total (ms) | CPU per mirror (ms) | wall (s) | ok |",
        "|---|---|---|---|---|",
    ]
    for i, (cpu, wall, ok) in enumerate(runs, 1):
        lines.append(f"| {i} | {cpu * 1000:.0f} | {cpu * 1000 / mirrors:.1f} | {wall:.2f} | {ok} |")
    lines += [
        "",
        f"The whole `syncd publish` process for the same {mirrors} mirrors, start-up and imports"
        f" included (rusage of the child): {cli_cpu * 1000:.0f} ms CPU.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python"
        f" {platform.python_version()}, asyncssh {asyncssh.__version__}, trio {trio.__version__}."
        " The simulated fleet shares the CPUs, so wall time is not a fleet figure.",
        "",
    ]
    (ROOT / "benchmarks" / "PUBLISH.md").write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
