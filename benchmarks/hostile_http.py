"""syncd's peak memory against a fleet of hostile HTTP mirrors, against the same pass on a
healthy fleet: one ``syncd monitor --once`` process per pass.

    .venv/bin/python -m benchmarks.hostile_http [--n 200] [--reps 3] [--flood-mb 1024]
        [--out benchmarks/results/hostile-http.json]

The healthy fleet is N mirrors served by nginx (the release's tree). The hostile fleet is N
mirrors spread over one server per attack, each answering a sound ``timestamp`` and then, to
the first CVD header asked for: a gzip bomb (``Content-Encoding: gzip, gzip, gzip``, a few
hundred bytes inflating to --flood-mb), ``Content-Length: 512`` over a chunked flood of
--flood-mb, a body without a length that never ends, a ``Content-Length`` past the bytes asked
for, a 200 with the whole file to the Range request, or an answer one byte at a time (past
the check's deadline). The figure is the process's peak RSS (``ru_maxrss`` from ``wait4``), with
its peak thread count (sampled every 20 ms: what systemd's ``TasksMax=`` counts); passes
alternate healthy and hostile, medians over --reps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from contextlib import ExitStack
from pathlib import Path

from devtools.harness.cvd import build_cvd, write_release
from devtools.harness.hostilehttp import (
    Answer,
    RoutedHttp,
    answer,
    chunked_flood,
    endless,
    gzip_bomb,
)
from devtools.harness.nginx import Nginx

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq0gZ7wI0nR0b7eQq0k9v3bq2yqLx1m6y1c7J8Vb3aT"
PARTIAL = b"206 Partial Content"


def attacks(head: bytes, whole: bytes, flood: int) -> dict[str, Answer]:
    """Each attack's answer to the first CVD header request (``bytecode.cvd``, bytes 0-511)."""

    def drip(conn: object) -> None:
        import socket
        import time

        assert isinstance(conn, socket.socket)
        conn.sendall(b"HTTP/1.1 206 Partial Content\r\nContent-Length: 512\r\n\r\n")
        for i in range(512):
            time.sleep(1.0)  # a byte a second: under the read timeout, past the deadline
            conn.sendall(head[i : i + 1])

    return {
        "gzip-bomb": answer(
            gzip_bomb(head, flood), PARTIAL, b"Content-Encoding: gzip, gzip, gzip\r\n"
        ),
        "length-over-chunked": chunked_flood(head, flood),
        "endless-no-length": endless(head, b"\0"),
        "oversize-length": answer(whole, PARTIAL),
        "range-ignored": answer(whole),
        "drip": drip,
    }


def inventory(urls: list[str]) -> str:
    return "".join(
        f'[[mirrors]]\nname = "m{i}.example"\nhost = "127.0.0.1"\ncountry = "PL"\n'
        f'admins = ["A <a@example.org>"]\nhost_keys = ["{KEY}"]\nhttp = "{url}"\n\n'
        for i, url in enumerate(urls)
    )


def one_pass(work: Path, name: str, urls: list[str], source: Path) -> dict[str, object]:
    """Run one ``syncd monitor --once`` over `urls`; return its peak RSS (MB) and outcome."""
    d = work / name
    d.mkdir(exist_ok=True)
    (d / "inventory.toml").write_text(inventory(urls))
    (d / "syncd.toml").write_text(
        f'inventory = "{d / "inventory.toml"}"\nstate = "{d / "state.sqlite"}"\n'
        f'source_tree = "{source}"\n[monitor]\nrequest_timeout_s = 3\nconcurrency = 50\n'
    )
    argv = [sys.executable, "-m", "syncd", "monitor", "--once", "--no-mail", "--json"]
    argv += ["--config", str(d / "syncd.toml")]
    threads = [0]
    with (d / "out.json").open("w") as out, (d / "err.txt").open("w") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err)
        done = threading.Event()
        sampler = threading.Thread(target=_count_threads, args=(proc.pid, threads, done))
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        done.set()
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = (d / "out.json").read_text().strip().splitlines()
    states: dict[str, int] = {}
    if lines:
        for m in json.loads(lines[-1])["mirrors"]:
            states[m["state"]] = states.get(m["state"], 0) + 1
    return {
        "rss_mb": round(usage.ru_maxrss / 1024, 1),
        "exit": proc.returncode,
        "states": states,
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_threads": threads[0],
    }


def _count_threads(pid: int, peak: list[int], done: threading.Event) -> None:
    """Sample the process's thread count every 20 ms (what systemd's TasksMax= counts)."""
    while not done.wait(0.02):
        try:
            text = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return
        for line in text.splitlines():
            if line.startswith("Threads:"):
                peak[0] = max(peak[0], int(line.split()[1]))


def main() -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.hostile_http", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--n", type=int, default=200, help="mirrors per fleet")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--flood-mb", type=int, default=1024, help="bomb and flood size, MiB")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hostilehttp-"))
    source = work / "source"
    write_release(source, 28034, payload_size=20_000)
    head = (source / "bytecode.cvd").read_bytes()[:512]
    whole = build_cvd("bytecode", 335, payload_size=20_000)
    sound: dict[str, Answer] = {
        "/timestamp": answer((source / "timestamp").read_bytes()),
        **{
            f"/{db}.cvd bytes=0-511": answer((source / f"{db}.cvd").read_bytes()[:512], PARTIAL)
            for db in ("daily", "main")
        },
    }
    runs: list[dict[str, object]] = []
    with ExitStack() as stack:
        web = stack.enter_context(Nginx(work / "nginx", source))
        servers = {
            kind: stack.enter_context(RoutedHttp({**sound, "/bytecode.cvd bytes=0-511": attack}))
            for kind, attack in attacks(head, whole, args.flood_mb << 20).items()
        }
        kinds = sorted(servers)
        hostile = [servers[kinds[i % len(kinds)]].base_url for i in range(args.n)]
        healthy = [web.base_url] * args.n
        for rep in range(args.reps):
            order = [("healthy", healthy), ("hostile", hostile)]
            for fleet, urls in order if rep % 2 == 0 else order[::-1]:
                got = one_pass(work, f"{fleet}-{rep}", urls, source)
                runs.append({"fleet": fleet, "rep": rep, **got})
                print(json.dumps(runs[-1]), flush=True)
    med = {
        fleet: statistics.median(float(r["rss_mb"]) for r in runs if r["fleet"] == fleet)  # type: ignore[arg-type]
        for fleet in ("healthy", "hostile")
    }
    ratio = med["hostile"] / med["healthy"]
    summary = {
        "n": args.n,
        "reps": args.reps,
        "flood_mb": args.flood_mb,
        "attacks": kinds,
        "median_rss_mb": med,
        "ratio": round(ratio, 3),
        "runs": runs,
    }
    print(
        f"N={args.n}: peak RSS healthy {med['healthy']:.1f} MB, hostile {med['hostile']:.1f} MB, "
        f"ratio {ratio:.2f} (goal: within 1.5)"
    )
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1) + "\n")
    return 0 if ratio <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
