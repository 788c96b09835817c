"""Measure syncd's CPU time per mirror for one publish to N fast simulated mirrors.

    .venv/bin/python benchmarks/publish_cpu.py [--mirrors 100] [--runs 3] [--write]

The mirrors are asyncssh servers in a separate process on loopback, each on its own port with
its own ed25519 host key, authorizing the pusher key and answering any command at once with a
valid report showing the release. syncd runs in this process exactly as ``syncd publish`` does
(``publish_main``: the record in SQLite, pinned host keys, trio with asyncssh on its
worker-thread loop, the fan-out);
its CPU time (user + system, all threads) is read with ``time.process_time()`` around that call,
so interpreter start-up and imports are not counted. With --write, the figures go to
benchmarks/PUBLISH.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncssh  # noqa: E402
import trio  # noqa: E402

from syncd.core.config import Policy  # noqa: E402
from syncd.core.inventory import parse_inventory  # noqa: E402
from syncd.core.outcome import Outcome  # noqa: E402
from syncd.orchestration.publish_job import PublishJob, publish_main  # noqa: E402

RELEASE = {"daily": 28034, "main": 62, "bytecode": 335}
REPORT = json.dumps(
    {
        "report_version": 1,
        "status": "ok",
        "verb": "sync",
        "source_requested": "rsync1.clamav.net",
        "source_used": "rsync1.clamav.net",
        "attempts": [{"source": "rsync1.clamav.net", "exit_code": 0, "duration_s": 0.1}],
        "started_at": "2026-11-25T14:00:00Z",
        "finished_at": "2026-11-25T14:00:01Z",
        "duration_s": 1.0,
        "files_transferred": 1,
        "bytes_transferred": 1234,
        "files_deleted": 0,
        "databases": {
            db: {"version": v, "build_time": "x", "signatures": 1, "md5_ok": True}
            for db, v in RELEASE.items()
        },
        "error": None,
        "client_version": "bench",
    }
)


# --- the simulated fleet (runs in its own process) -------------------------------------------


async def _serve(count: int, authorized: str) -> None:
    def answer(process: asyncssh.SSHServerProcess[str]) -> None:
        process.stdout.write(REPORT + "\n")
        process.exit(0)

    keys = asyncssh.import_authorized_keys(authorized)
    listing = []
    servers = []
    for _ in range(count):
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        server = await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[host_key],
            authorized_client_keys=keys,
            process_factory=answer,
            encryption_algs=["aes256-gcm@openssh.com"],
            kex_algs=["curve25519-sha256"],
            allow_scp=False,
            line_editor=False,
        )
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        listing.append({"port": port, "host_key": host_key.export_public_key().decode().strip()})
    print(json.dumps(listing), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF


# --- the measurement ---------------------------------------------------------------------------


def _inventory(listing: list[dict[str, object]]) -> str:
    blocks = []
    for i, entry in enumerate(listing):
        blocks.append(
            "[[mirrors]]\n"
            f'name = "bench{i:04d}.test"\nhost = "127.0.0.1"\nport = {entry["port"]}\n'
            f'user = "clamavdb"\ncountry = "PL"\nhost_keys = ["{entry["host_key"]}"]\n'
        )
    return "\n".join(blocks)


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
    ok = sum(r.outcome is Outcome.OK for r in outcome.results)
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirrors", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="write benchmarks/PUBLISH.md")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--authorized", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve, args.authorized))
        return 0

    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        work = Path(tmp)
        pusher = asyncssh.generate_private_key("ssh-ed25519", comment="bench-pusher")
        key = work / "pusher"
        pusher.write_private_key(key)
        key.chmod(0o600)
        authorized = pusher.export_public_key().decode()
        fleet = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(args.mirrors), "--authorized", authorized],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert fleet.stdout is not None
            listing = json.loads(fleet.stdout.readline())
            inventory_text = _inventory(listing)
            measure_once(work, key, inventory_text)  # warm-up: caches, first-run costs
            runs = [measure_once(work, key, inventory_text) for _ in range(args.runs)]
            cli_cpu, cli_code = measure_cli(work, key, inventory_text)
        finally:
            if fleet.stdin:
                fleet.stdin.close()
            fleet.wait(10)
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
        "Written by `benchmarks/publish_cpu.py --write`; rerun it after changes to the fan-out.",
        "",
        f"One publish to {mirrors} simulated mirrors (asyncssh servers in a separate process on"
        " loopback, each on its own port with its own ed25519 host key, answering at once with a"
        " valid report). syncd runs in-process as `syncd publish` does: record in SQLite (WAL),"
        " pinned host keys, trio with asyncssh on its worker-thread loop, handshake bound 100,"
        " no HTTP proof. CPU is"
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
