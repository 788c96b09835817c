"""Where does syncd's client CPU go? asyncssh on plain asyncio versus asyncssh driven from trio.

    .venv/bin/python -m benchmarks.bridge --n 300 --reps 3

Same fleet (zero latency, no faults), same work per mirror (connect with a pinned host key,
run the sync command, read the JSON line, close), several placements of the asyncssh work:

- ``asyncio``: plain asyncio, the library's floor.
- ``trio-asyncio``: trio with ``trio_asyncio.open_loop()``, one ``aio_as_trio`` crossing per
  mirror (syncd's design).
- ``trio-asyncio-3x``: a crossing per operation (connect, run, close).
- ``trio+thread``: trio orchestrates; asyncssh runs on an asyncio loop in a worker thread,
  work handed over with ``asyncio.run_coroutine_threadsafe`` and awaited through
  ``trio.to_thread``-free callbacks (``trio.lowlevel`` tokens).

Reports process CPU (user+sys) per connection, medians over reps, in one process per variant.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

from devtools.harness.simfleet import Fleet, make

COMMAND = "sync run-id=bridge expect-daily=28034 expect-main=62 expect-bytecode=335"
VARIANTS = ("asyncio", "trio-asyncio", "trio-asyncio-3x", "trio+thread")


def _setup(inventory: Path, key: Path) -> tuple[list[dict[str, Any]], Any, dict[str, Any]]:
    import asyncssh
    import trio  # noqa: F401 - imported before the measurement starts, for every variant
    import trio_asyncio  # noqa: F401

    mirrors = tomllib.loads(inventory.read_text())["mirrors"]
    options = asyncssh.SSHClientConnectionOptions(
        client_keys=[asyncssh.read_private_key(key)],
        agent_path=None,
        config=None,
        encryption_algs=["aes256-gcm@openssh.com"],
    )
    known = {
        m["name"]: asyncssh.import_known_hosts(
            "".join(f"[{m['host']}]:{m['port']} {k}\n" for k in m["host_keys"])
        )
        for m in mirrors
    }
    return mirrors, options, known


async def _one_asyncio(m: dict[str, Any], options: Any, known: Any) -> bool:
    import asyncssh

    async with asyncssh.connect(
        m["host"], m["port"], username=m["user"], known_hosts=known, options=options
    ) as conn:
        res = await conn.run(COMMAND, check=False)
    return json.loads(str(res.stdout).splitlines()[-1])["status"] == "ok"


def run_variant(variant: str, inventory: Path, key: Path, bound: int) -> dict[str, float]:
    mirrors, options, known = _setup(inventory, key)
    before = time.process_time()
    wall = time.monotonic()
    if variant == "asyncio":

        async def main_asyncio() -> list[bool]:
            sem = asyncio.Semaphore(bound)

            async def one(m: dict[str, Any]) -> bool:
                async with sem:
                    return await _one_asyncio(m, options, known[m["name"]])

            return await asyncio.gather(*(one(m) for m in mirrors))

        # trio_asyncio (imported above) replaces the loop policy: ask for a plain loop
        with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
            oks = runner.run(main_asyncio())
    elif variant.startswith("trio-asyncio"):
        oks = _trio_asyncio(mirrors, options, known, bound, split=variant.endswith("3x"))
    else:
        oks = _trio_thread(mirrors, options, known, bound)
    cpu = time.process_time() - before
    return {
        "cpu_ms": 1000 * cpu / len(mirrors),
        "wall_s": time.monotonic() - wall,
        "ok": sum(oks),
        "n": len(mirrors),
    }


def _trio_asyncio(
    mirrors: list[dict[str, Any]], options: Any, known: dict[str, Any], bound: int, split: bool
) -> list[bool]:
    import asyncssh
    import trio
    import trio_asyncio

    async def main() -> list[bool]:
        limiter = trio.CapacityLimiter(bound)
        oks: list[bool] = []
        async with trio_asyncio.open_loop():

            async def one(m: dict[str, Any]) -> None:
                async with limiter:
                    if not split:
                        oks.append(
                            await trio_asyncio.aio_as_trio(_one_asyncio)(
                                m, options, known[m["name"]]
                            )
                        )
                        return
                    conn = await trio_asyncio.aio_as_trio(asyncssh.connect)(
                        m["host"],
                        m["port"],
                        username=m["user"],
                        known_hosts=known[m["name"]],
                        options=options,
                    )
                    res = await trio_asyncio.aio_as_trio(conn.run)(COMMAND, check=False)
                    conn.close()
                    await trio_asyncio.aio_as_trio(conn.wait_closed)()
                    oks.append(json.loads(str(res.stdout).splitlines()[-1])["status"] == "ok")

            async with trio.open_nursery() as nursery:
                for m in mirrors:
                    nursery.start_soon(one, m)
        return oks

    return trio.run(main)


def _trio_thread(
    mirrors: list[dict[str, Any]], options: Any, known: dict[str, Any], bound: int
) -> list[bool]:
    import trio

    # trio_asyncio replaces the event loop policy on import: ask for a plain loop explicitly
    loop = asyncio.SelectorEventLoop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def main() -> list[bool]:
        limiter = trio.CapacityLimiter(bound)
        token = trio.lowlevel.current_trio_token()
        oks: list[bool] = []

        async def one(m: dict[str, Any]) -> None:
            async with limiter:
                done = trio.Event()
                box: list[Any] = []
                fut = asyncio.run_coroutine_threadsafe(
                    _one_asyncio(m, options, known[m["name"]]), loop
                )

                def finished(f: Any) -> None:
                    box.append(f)
                    token.run_sync_soon(done.set)

                fut.add_done_callback(finished)
                await done.wait()
                oks.append(bool(box[0].result()))

        async with trio.open_nursery() as nursery:
            for m in mirrors:
                nursery.start_soon(one, m)
        return oks

    try:
        return trio.run(main)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bridge")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--bound", type=int, default=100)
    ap.add_argument("--variant", choices=VARIANTS)
    ap.add_argument("--inventory", type=Path)
    ap.add_argument("--key", type=Path)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "bridge.json")
    args = ap.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.variant:  # one measurement in this fresh process
        print(json.dumps(run_variant(args.variant, args.inventory, args.key, args.bound)))
        return
    results: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="bridge-") as tmp:
        fleet = Path(tmp)
        make(fleet, args.n, 1, 0.0, (0.0, 0.0), (0.0, 0.0))
        with Fleet(fleet, 1):
            for rep in range(args.reps):
                for v in VARIANTS if rep % 2 == 0 else tuple(reversed(VARIANTS)):
                    out = subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "benchmarks.bridge",
                            "--variant",
                            v,
                            "--inventory",
                            str(fleet / "inventory.toml"),
                            "--key",
                            str(fleet / "pusher_ed25519"),
                            "--bound",
                            str(args.bound),
                        ],
                        capture_output=True,
                        text=True,
                        check=True,
                        cwd=Path(__file__).resolve().parent.parent,
                    )
                    results[v].append(json.loads(out.stdout))
                    print(v, results[v][-1], file=sys.stderr)
    base = statistics.median(r["cpu_ms"] for r in results["asyncio"])
    rows = []
    for v in VARIANTS:
        cpu = statistics.median(r["cpu_ms"] for r in results[v])
        rows.append(
            {
                "variant": v,
                "cpu_ms_per_conn": round(cpu, 2),
                "vs_asyncio": round(cpu / base, 2),
                "wall_s": round(statistics.median(r["wall_s"] for r in results[v]), 2),
                "all_ok": all(r["ok"] == r["n"] for r in results[v]),
            }
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"n": args.n, "reps": args.reps, "rows": rows}, indent=1))
    print("| variant | CPU ms/connection | vs asyncio | wall s | all ok |\n|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['variant']} | {r['cpu_ms_per_conn']} | {r['vs_asyncio']} | {r['wall_s']} | "
            f"{r['all_ok']} |"
        )


if __name__ == "__main__":
    main()
