"""A ``syncd monitor --once`` pass over N HTTP mirrors: its wall time, CPU and peak RSS against
a floor making the same requests with plain httpx, and the bytes each pass costs each mirror.

    .venv/bin/python -m benchmarks.monitor_pass [--n 200 500 1000] [--concurrency 50]
        [--out benchmarks/results/monitor-pass.json]

The fleet is one nginx (one worker) with one ``server`` per loopback address (127.77.x.y, one
port), all serving one release tree at real sizes where it matters (the current daily cdiff
100 KB, bytecode.cvd 300 KB; daily and main smaller, since only their first 512 and last 4096
bytes are ever read), which is also syncd's source tree. For each N, in one run, against one
fleet, in this order:

1. ``whole-first`` / ``conditional-first``: a first pass with ``[monitor] conditional = false``
   (today's checks: every release file read whole, every CVD tail compared) and with it on
   (the same requests, what was proven remembered);
2. ``whole-steady`` / ``conditional-steady``: the next pass of each, nothing changed;
3. a release lands (daily 28035, its cdiff and .sign files, written into the tree);
4. ``whole-release`` / ``conditional-release``: the pass after it (the new files read whole);
5. ``conditional-steady-2``: the pass after that.

Each syncd pass is its own process (``wait4``: user + system CPU, ``ru_maxrss``; wall time
around it); its requests are read back from nginx's access log (``$request_length`` +
``$bytes_sent``: request and answer, headers included, TCP/IP overhead not; the answer's
headers apart from its body, and the first mirror's requests one by one in ``one_mirror``) and
replayed by the floor: a process running asyncio and an ``httpx.AsyncClient`` with syncd's
limits and request headers (a new connection per request, the same concurrency, the same
method, Range and any conditional header), each mirror's requests in order, bodies read,
nothing judged, nothing recorded. Loopback only, one family (IPv4): "per mirror" below is per
mirror and family. Bounded: each pass has syncd's own run deadline, the floor 300 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from devtools.harness.binaries import require
from devtools.harness.cvd import build_cdiff, build_sign, write_cvd, write_timestamp
from devtools.harness.documents import LAB_INVENTORY
from devtools.harness.ports import free_port, stop_process, wait_listening

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq0gZ7wI0nR0b7eQq0k9v3bq2yqLx1m6y1c7J8Vb3aT"
SIZES = {"daily": 600_000, "main": 600_000, "bytecode": 300_000, "cdiff": 100_000}
# what nginx logs of each request; the conditional headers are replayed by the floor
CONDITIONALS = {
    "range": "Range",
    "if_range": "If-Range",
    "if_match": "If-Match",
    "if_unmodified_since": "If-Unmodified-Since",
    "if_none_match": "If-None-Match",
}
FIELDS = (
    "addr",
    "method",
    "uri",
    *CONDITIONALS,
    "status",
    "request_length",
    "bytes_sent",
    "body_bytes",
)
HOST = "db.pl.clamav.net"
GOAL_BYTES = 4096
GOAL_RATIO = 1.3
PASS_BOUND_S = 900.0


def address(i: int) -> str:
    return f"127.77.{i // 250}.{i % 250 + 1}"


def write_release(
    tree: Path, daily: int, main: int | None = 62, bytecode: int | None = 335
) -> None:
    """The release as mirrors serve it: three CVDs, the current daily cdiff and its .sign, a
    .sign beside each CVD, and timestamp (the files of older releases stay). A release that
    changes daily only (`main`, `bytecode` None) leaves their files as they are."""
    for db, version in (("daily", daily), ("main", main), ("bytecode", bytecode)):
        if version is None:
            continue
        write_cvd(tree, db, version, payload_size=SIZES[db])
        (tree / f"{db}-{version}.cvd.sign").write_bytes(build_sign(f"{db}-{version}.cvd"))
    cdiff = f"daily-{daily}.cdiff"
    (tree / cdiff).write_bytes(build_cdiff(daily, payload_size=SIZES["cdiff"]))
    (tree / f"{cdiff}.sign").write_bytes(build_sign(cdiff))
    write_timestamp(tree, time.time())


class NginxFleet:
    """One nginx, one worker, one server per mirror's loopback address, all on one port."""

    def __init__(self, work: Path, docroot: Path, n: int) -> None:
        self.work, self.docroot, self.n = work, docroot, n
        self.port = free_port()
        self.log = work / "access.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def urls(self) -> list[str]:
        return [f"http://{address(i)}:{self.port}" for i in range(self.n)]

    def start(self) -> NginxFleet:
        self.work.mkdir(parents=True, exist_ok=True)
        user = "user root;" if os.geteuid() == 0 else ""
        servers = "\n".join(
            f"server {{ listen {address(i)}:{self.port}; root {self.docroot}; }}"
            for i in range(self.n)
        )
        fmt = "\\t".join(
            f"${v}"
            for v in (
                "server_addr",
                "request_method",
                "request_uri",
                *(f"http_{c}" for c in CONDITIONALS),
                "status",
                "request_length",
                "bytes_sent",
                "body_bytes_sent",
            )
        )
        conf = self.work / "nginx.conf"
        conf.write_text(f"""
{user}
daemon off;
worker_processes 1;
worker_rlimit_nofile 8192;
pid {self.work / "nginx.pid"};
error_log {self.work / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
    log_format bench '{fmt}';
    access_log {self.log} bench;
    default_type application/octet-stream;
    client_body_temp_path {self.work}/body;
    proxy_temp_path {self.work}/proxy;
    fastcgi_temp_path {self.work}/fastcgi;
    uwsgi_temp_path {self.work}/uwsgi;
    scgi_temp_path {self.work}/scgi;
{servers}
}}
""")
        argv = [require("nginx"), "-c", str(conf), "-p", str(self.work)]
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_listening(address(self.n - 1), self.port, self._proc, self.work / "error.log")
        return self

    def mark(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def since(self, mark: int) -> list[dict[str, str]]:
        time.sleep(0.2)  # nginx writes its log line after the answer
        with self.log.open("rb") as f:
            f.seek(mark)
            lines = f.read().decode().splitlines()
        # nginx writes a double quote in a logged header as \x22
        return [
            dict(zip(FIELDS, line.replace("\\x22", '"').split("\t"), strict=True)) for line in lines
        ]

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc)
            self._proc = None


def inventory(urls: list[str]) -> str:
    return LAB_INVENTORY + "".join(
        f'[[mirrors]]\nname = "m{i}.example"\nhost = "127.0.0.1"\ncountry = "PL"\n'
        f'admins = ["A <a@example.org>"]\nhost_keys = ["{KEY}"]\nhttp = "{url}"\n\n'
        for i, url in enumerate(urls)
    )


def measured(argv: list[str], out: Path) -> dict[str, Any]:
    """Run `argv`, stdout to `out`; return its wall time, CPU and peak RSS."""
    started = time.monotonic()
    with out.open("w") as f, (out.with_suffix(".err")).open("w") as err:
        proc = subprocess.Popen(argv, stdout=f, stderr=err)
        bound = threading.Timer(PASS_BOUND_S, proc.kill)  # a pass that hangs ends the run
        bound.start()
        _, status, usage = os.wait4(proc.pid, 0)
        bound.cancel()
    wall = time.monotonic() - started
    code = os.waitstatus_to_exitcode(status)
    return {
        "exit": code,
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def traffic(lines: list[dict[str, str]], n: int) -> dict[str, Any]:
    total = sum(int(x["request_length"]) + int(x["bytes_sent"]) for x in lines)
    statuses: dict[str, int] = {}
    for x in lines:
        statuses[x["status"]] = statuses.get(x["status"], 0) + 1
    kinds: dict[str, int] = {}
    for x in lines:
        uri = x["uri"]
        kind = "sign" if uri.endswith(".sign") else uri.rsplit(".", 1)[-1].lstrip("/")
        head = " HEAD" if x["method"] == "HEAD" else ""
        key = f"{kind} {x['status']}{' range' if x['range'] != '-' else ''}{head}"
        kinds[key] = kinds.get(key, 0) + int(x["request_length"]) + int(x["bytes_sent"])
    return {
        "requests_per_mirror": round(len(lines) / n, 2),
        "bytes_per_mirror": round(total / n),
        "statuses": statuses,
        "bytes_per_mirror_by_kind": {k: round(v / n) for k, v in sorted(kinds.items())},
        "one_mirror": one_mirror(lines),
    }


def one_mirror(lines: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The first mirror's requests, in order: what was asked, the answer's status, and the
    bytes of the request (line and headers), of the answer's headers and of its body."""
    return [
        {
            "request_line": f"{x['method']} {x['uri']}",
            "sent": {h: x[c] for c, h in CONDITIONALS.items() if x[c] != "-"},
            "status": int(x["status"]),
            "request": int(x["request_length"]),
            "answer_headers": int(x["bytes_sent"]) - int(x["body_bytes"]),
            "body": int(x["body_bytes"]),
        }
        for x in lines
        if x["addr"] == address(0)
    ]


def syncd_pass(work: Path, name: str, conditional: bool) -> tuple[dict[str, Any], Path]:
    d = work / ("conditional" if conditional else "whole")
    argv = [sys.executable, "-m", "syncd", "monitor", "--once", "--no-mail", "--no-dns", "--json"]
    argv += ["--config", str(d / "syncd.toml")]
    got = measured(argv, d / f"{name}.json")
    states: dict[str, int] = {}
    text = (d / f"{name}.json").read_text().strip().splitlines()
    if text:
        for m in json.loads(text[-1])["mirrors"]:
            states[m["state"]] = states.get(m["state"], 0) + 1
    return {**got, "states": states}, d


def floor_pass(
    work: Path, name: str, lines: list[dict[str, str]], concurrency: int
) -> dict[str, Any]:
    """Replay `lines` (one pass's requests) with plain httpx in a process of its own."""
    per: dict[str, list[list[str]]] = {}
    for x in lines:
        sent = {h: x[c] for c, h in CONDITIONALS.items() if x[c] != "-"}
        per.setdefault(x["addr"], []).append([x["method"], x["uri"], sent])
    plan = work / f"floor-{name}.requests.json"
    plan.write_text(json.dumps({"port": int(FLEET_PORT[0]), "mirrors": per}))
    argv = [sys.executable, "-m", "benchmarks.monitor_pass", "--floor", str(plan)]
    argv += ["--concurrency", str(concurrency)]
    return measured(argv, work / f"floor-{name}.out")


FLEET_PORT: list[int] = [0]


async def _floor(plan: dict[str, Any], concurrency: int) -> int:
    import httpx

    limit = asyncio.Semaphore(concurrency)
    failed = 0

    async def one(client: httpx.AsyncClient, addr: str, requests: list[list[str]]) -> None:
        nonlocal failed
        async with limit:
            for method, uri, sent in requests:
                headers = {"Host": HOST, **sent}
                try:
                    url = f"http://{addr}:{plan['port']}{uri}"
                    await client.request(method, url, headers=headers)
                except httpx.HTTPError:
                    failed += 1

    client = httpx.AsyncClient(
        timeout=httpx.Timeout(10.0),
        trust_env=False,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=0),
        headers={"User-Agent": "ClamAV-MirrorCheck"},
    )
    for name in ("Accept", "Accept-Encoding", "Connection"):  # as syncd: the same bytes
        del client.headers[name]
    async with client:
        await asyncio.wait_for(
            asyncio.gather(*(one(client, a, r) for a, r in plan["mirrors"].items())), 300
        )
    return failed


def run_n(base: Path, n: int, concurrency: int) -> dict[str, Any]:
    work = base / f"n{n}"
    tree = work / "tree"
    write_release(tree, 28034)
    fleet = NginxFleet(work / "nginx", tree, n).start()
    FLEET_PORT[0] = fleet.port
    urls = fleet.urls()
    for mode, on in (("whole", False), ("conditional", True)):
        d = work / mode
        d.mkdir()
        (d / "inventory.toml").write_text(inventory(urls))
        (d / "syncd.toml").write_text(
            f'inventory = "{d / "inventory.toml"}"\nstate = "{d / "state.sqlite"}"\n'
            f'source_tree = "{tree}"\n[monitor]\nconcurrency = {concurrency}\n'
            f"run_deadline_s = 600\nconditional = {str(on).lower()}\n"
        )
    passes: list[dict[str, Any]] = []
    steps: Iterable[tuple[str, bool] | None] = [
        ("whole-first", False),
        ("conditional-first", True),
        ("whole-steady", False),
        ("conditional-steady", True),
        None,  # the release lands
        ("whole-release", False),
        ("conditional-release", True),
        ("conditional-steady-2", True),
    ]
    try:
        for step in steps:
            if step is None:
                write_release(tree, 28035, None, None)
                continue
            name, on = step
            mark = fleet.mark()
            syncd, _ = syncd_pass(work, name, on)
            lines = fleet.since(mark)
            syncd.update(traffic(lines, n))
            mark = fleet.mark()
            floor = floor_pass(work, name, lines, concurrency)
            floor.update(traffic(fleet.since(mark), n))
            row = {
                "pass": name,
                "n": n,
                "syncd": syncd,
                "floor": floor,
                "cpu_ms_per_mirror": round(1000 * syncd["cpu_s"] / n, 2),
                "floor_cpu_ms_per_mirror": round(1000 * floor["cpu_s"] / n, 2),
                "cpu_ratio": round(syncd["cpu_s"] / max(floor["cpu_s"], 1e-6), 2),
                "wall_ratio": round(syncd["wall_s"] / max(floor["wall_s"], 1e-6), 2),
            }
            passes.append(row)
            print(json.dumps(row), flush=True)
    finally:
        fleet.stop()
    return {"n": n, "passes": passes}


def summary(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in results:
        by = {p["pass"]: p for p in r["passes"]}
        steady, whole = by["conditional-steady"], by["whole-steady"]
        b = steady["syncd"]["bytes_per_mirror"]
        lines.append(
            f"N={r['n']}: steady {b} B/mirror (goal {GOAL_BYTES}), today's "
            f"{whole['syncd']['bytes_per_mirror']} B; conditional-steady CPU "
            f"{steady['cpu_ratio']}x the floor's, wall {steady['wall_ratio']}x "
            f"(goal {GOAL_RATIO}x at N=1000)"
        )
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.monitor_pass", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--n", type=int, nargs="+", default=[200, 500, 1000])
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--floor", type=Path, help=argparse.SUPPRESS)  # the floor's own process
    args = ap.parse_args()
    if args.floor:
        failed = asyncio.run(_floor(json.loads(args.floor.read_text()), args.concurrency))
        print(json.dumps({"failed": failed}))
        return 0 if failed == 0 else 1
    base = Path(tempfile.mkdtemp(prefix="monitorpass-"))
    try:
        results = [run_n(base, n, args.concurrency) for n in args.n]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    for line in summary(results):
        print(line)
    if args.out:
        args.out.write_text(json.dumps({"results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
