"""Measure clam-clientsync's own overhead per push, with a stub rsync that stamps its exec.

    .venv/bin/python -m benchmarks.client_overhead [--runs N] [--zipapp PATH|build]
        [--daily-mb MB] [--python PYTHON]

Two figures per run, both on the wall clock (CLOCK_REALTIME, as `date` reads it):
  before: from spawning the client to the stub rsync's first instruction (interpreter start,
          config, checks, lock, staging preparation, rsync argv and exec);
  after:  from the stub's last instruction to the client's exit (verify the new daily.cvd,
          publish by link+rename, report, save the report, log).
The stub "transfers" a new daily.cvd of --daily-mb MiB into staging each run (a copy, inside
the rsync window), so `after` includes the MD5 check of a new database as a real push does.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devtools.harness.client import build_zipapp
from devtools.harness.cvd import write_release

ROOT = Path(__file__).resolve().parent.parent

STUB = """#!/bin/sh
if [ "$1" = "--version" ]; then echo "rsync  version 3.4.1  protocol version 32"; exit 0; fi
echo "start $(date +%s.%N)" >> {stamps}
for dest; do :; done
if [ -f {next} ]; then
    cp {next} "$dest/.daily.cvd.XXXX" && mv "$dest/.daily.cvd.XXXX" "$dest/daily.cvd"
fi
echo "Number of regular files transferred: 1"
echo "Total bytes received: 1,234"
echo "end $(date +%s.%N)" >> {stamps}
exit 0
"""


def main() -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.client_overhead", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--zipapp", help="PATH of clam-clientsync.pyz, or 'build' to build one")
    ap.add_argument(
        "--python",
        default="/usr/bin/python3",
        help="interpreter for the zipapp (default: the system python3)",
    )
    ap.add_argument("--daily-mb", type=float, default=1.0)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="clientbench-"))
    try:
        to, state, src = work / "to", work / "var", work / "src"
        to.mkdir()
        payload = int(args.daily_mb * 1024 * 1024)
        write_release(to, 30000, payload_size=2048)
        stamps, nxt = work / "stamps", work / "next-daily.cvd"
        stub = work / "rsync"
        stub.write_text(STUB.format(stamps=stamps, next=nxt))
        stub.chmod(0o755)
        conf = work / "clam-clientsync.conf"
        conf.write_text(
            f"TO={to}\nSTATE_DIR={state}\nRSYNC={stub}\n"
            'SOURCES="rsync1.clamav.net=rsync://127.0.0.1:1"\n'
        )
        conf.chmod(0o600)
        if args.zipapp:
            pyz = (
                build_zipapp(work / "clam-clientsync.pyz")
                if args.zipapp == "build"
                else Path(args.zipapp)
            )
            cmd = [args.python, "-I", str(pyz)]
            label = f"zipapp ({args.python} -I {pyz.name})"
        else:
            cmd = [str(ROOT / ".venv" / "bin" / "clam-clientsync")]
            label = "installed script (.venv/bin/clam-clientsync)"
        cmd += ["--config", str(conf), "rsync1.clamav.net"]
        before, after, total = [], [], []
        for i in range(args.runs + 1):
            write_release(src, 30001 + i, payload_size=payload)
            shutil.copy(src / "daily.cvd", nxt)
            stamps.unlink(missing_ok=True)
            env = {"PATH": "/usr/bin:/bin", "SSH_ORIGINAL_COMMAND": f"sync run-id=b{i}"}
            t0 = time.time()
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            t1 = time.time()
            rep = json.loads(done.stdout)
            if rep["status"] != "ok":
                print(done.stdout, done.stderr, file=sys.stderr)
                return 1
            marks = dict(line.split() for line in stamps.read_text().splitlines())
            if i == 0:
                continue  # warm-up: staging is created and seeded
            before.append((float(marks["start"]) - t0) * 1000)
            after.append((t1 - float(marks["end"])) * 1000)
            total.append((t1 - t0) * 1000)

        def fmt(xs: list[float]) -> str:
            xs = sorted(xs)
            return (
                f"median {statistics.median(xs):6.1f} ms   p90 "
                f"{xs[int(len(xs) * 0.9) - 1]:6.1f} ms   min {xs[0]:6.1f} ms"
            )

        print(f"{label}: {args.runs} pushes, new daily.cvd of {args.daily_mb} MiB each")
        print(f"  before rsync exec : {fmt(before)}")
        print(f"  after rsync exits : {fmt(after)}")
        overhead = statistics.median(before) + statistics.median(after)
        print(f"  overhead (sum)    : median {overhead:6.1f} ms")
        print(f"  whole push        : {fmt(total)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
