"""Release-to-served on real data: real rsync daemons behind egress caps, real clients.

    .venv/bin/python -m benchmarks.served --n 50 200 --reps 2 --out results/served-n50-n200.json

For each N, on loopback:

- the release's tree (``devtools.harness.cvd.write_release_tree`` at ``--scale`` times the real
  sizes, built at the harness clock): daily.cvd changes (its body is new gzip'd bytes, so rsync's
  delta gains nothing), main.cvd and bytecode.cvd do not (same bytes and mtimes as the tree the
  mirrors already serve); served by two real ``rsync --daemon`` (rsync1, rsync2);
- each source behind a throttling proxy (``devtools.harness.faultproxy``): one token bucket caps
  the source's egress summed over all its connections (``--source-mbps``), and each mirror
  reaches the proxy at its own loopback address, whose connections are capped at that mirror's
  downlink (drawn from a seeded log-normal profile, ``--mirror-mbps``). The client's config has
  no bandwidth knob (no ``--bwlimit`` in RSYNC options), so the proxy is the real cap here;
- N mirrors, each running the real ``clam-clientsync`` zipapp (under the system python3, as
  the mirror account) through its forced-command path: the pushed command in
  ``SSH_ORIGINAL_COMMAND``, the source chosen by the pusher key that logged in, the report on
  stdout. With ``--via sshd`` (the default up to N=10) each mirror is a real OpenSSH sshd whose
  authorized_keys force the client, one line per source's key, as ``syncd keys render`` writes
  them; with ``--via fleet`` (the default above) the SSH servers are the simulated fleet's
  asyncssh servers running the same forced command (``devtools/harness/simfleet.py``,
  ``exec.json``): one sshd per mirror does not scale to N=200 on two cores.

Contenders, in the same run, on the same fleet, each from the previous release on every mirror:
``old`` (one OpenSSH ``ssh`` per mirror started at once with the rsync1 key, not waited for:
the ``&`` of a shell loop), ``syncd-single`` (``syncd publish`` with one key, no ``[[sources]]``:
every mirror pulls from rsync1), ``syncd-balanced`` (``[[sources]]`` rsync1 and rsync2,
weight 1:1), ``syncd-tiered`` (the same, and ``--hubs`` K hubs: the K mirrors with the fastest
downlinks also run a real anonymous ``rsync --daemon`` over their DocumentRoot, behind their own
egress cap (``--hub-mbps``); every other mirror's client lists two of them in ``HUBS``, at its
own address and downlink cap, and the inventory gives the hubs their ``hub`` table and the
others their ``hubs``: a second wave).

Each syncd contender keeps its record (its SQLite state) from run to run of one N, as syncd does
from one release to the next: the mirrors are pushed slowest first by their last push, and split
by the learned rates once the record has them. ``--warmup`` publishes once with each first,
unmeasured, so that every measured run has a record.

Served: the moment a mirror's DocumentRoot holds the new daily.cvd (its header's version),
polled on disk every 50 ms. The physical limit of a run is ``max(bytes per mirror / slowest
mirror's cap, total bytes / total source egress)``, from the bytes the proxies forwarded.

Busy sources: ``--max-connections K`` gives both daemons rsync's ``max connections = K``; a
client over it gets ``@ERROR: max connections (K) reached`` (rsync exit 5), which it reports as
``rsync_busy``. Each syncd run's figures then include, from its record (``state.db``): the
client rsync attempts answered busy per source, the pushes whose report ended busy, the
transfers in flight per source (peak, and the median at each push's start in the run's second
half: where the busy pacing settled), and the mirrors that failed with their last error.
``--check-propagation`` (with ``--reps 1``, no ``--warmup``: one run per record) sets each syncd
run's propagation as its record gives it (``syncd releases``'s code) beside the disk times
(``benchmarks.propagation_check``): the same origin (the run's start in the record), per mirror
and per quantile, flagged beyond the bounds; ``python -m benchmarks.propagation_check FILE``
compares a stored run again. ``--keep DIR`` keeps each syncd run's record, ``publish.json``,
``publish.err`` and ``syncd runs show`` output under ``DIR/n<N>-<rep>-<contender>/``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from benchmarks import contenders, propagation_check
from devtools.harness.account import MirrorAccount, give_to, mirror_account
from devtools.harness.client import (
    SOURCE_NAMES,
    build_client_zipapp,
    client_command,
    client_config,
    mirror_home,
)
from devtools.harness.cvd import read_header, write_release_tree
from devtools.harness.documents import LAB_INVENTORY, inventory_block, sshd_mirror
from devtools.harness.faultproxy import FaultProxy
from devtools.harness.rsyncd import RsyncDaemon
from devtools.harness.simfleet import Fleet, address, make, write_exec
from devtools.harness.sshd import Sshd, forced_command_line
from syncd.publish.sources import SourceBoard, SourceSpec

ROOT = Path(__file__).resolve().parent.parent
CONTENDERS = ("old", "syncd-single", "syncd-balanced", "syncd-tiered")
HUB_MODULE = "clamav"
NEW = {"daily": 28034, "main": 62, "bytecode": 335}  # what benchmarks.contenders announces
MB = 1_000_000


@dataclass
class Result:
    contender: str
    n: int
    t50_s: float | None
    t95_s: float | None
    t100_s: float | None
    last_served_s: float | None  # the last mirror that did serve (t100 when none failed)
    served: int
    failures: int
    failed_examples: list[str]
    bytes_by_source: dict[str, int]
    wall_s: float
    limit_s: float
    limit_slowest_mirror_s: float
    limit_egress_s: float
    t100_over_limit: float | None
    record: dict[str, Any] | None = None  # syncd's runs: what its state.db shows (record_digest)
    # the shape of the tail: served time per decile, and the last five served with downlinks
    deciles_s: list[float | None] = field(default_factory=list)
    last_served: list[dict[str, Any]] = field(default_factory=list)
    t100_but_late_hub_s: float | None = None  # with --late-hub-s: every other mirror served
    # with --check-propagation: the record's propagation against the disks (propagation_check)
    propagation: dict[str, Any] | None = None


def _same_stat(prev: Path, new: Path) -> None:
    """Give every file of `new` with the same bytes as in `prev` the mtime of `prev`'s copy (a
    release leaves unchanged databases as they were on the sources)."""
    for f in new.iterdir():
        old = prev / f.name
        if old.is_file() and old.read_bytes() == f.read_bytes():
            shutil.copystat(old, f)


def build_trees(work: Path, scale: float) -> tuple[Path, Path]:
    prev, new = work / "prev", work / "new"
    for d in (prev, new):
        d.mkdir(parents=True)
    write_release_tree(prev, NEW["daily"] - 1, NEW["main"], NEW["bytecode"], scale=scale)
    for f in prev.iterdir():  # written an hour before the new release (rsync's quick check
        st = f.stat()  # compares size and mtime: a same-size daily.cvd must not look unchanged)
        os.utime(f, (st.st_atime - 3600, st.st_mtime - 3600))
    write_release_tree(new, NEW["daily"], NEW["main"], NEW["bytecode"], scale=scale)
    _same_stat(prev, new)
    return prev, new


def proxy_address(source: int, i: int) -> str:
    """Mirror i's own address at source's proxy: 127.2.x.y (rsync1), 127.3.x.y (rsync2), and
    127.4.x.y at every hub's proxy (source 2)."""
    return "127." + str(2 + source) + address(i)[len("127.1") :]


def draw_caps(n: int, seed: int, median_mbps: float, sigma: float) -> list[float]:
    """Each mirror's downlink in bytes/s, log-normal around `median_mbps` (MB/s), seeded."""
    rng = random.Random(seed)
    return [median_mbps * MB * rng.lognormvariate(0, sigma) for _ in range(n)]


@dataclass
class Hubs:
    """The second wave's hubs: each a mirror's rsync daemon behind its own egress cap."""

    count: int
    egress_bps: float
    max_transfers: int
    wait_s: float | None = None  # syncd's [policy] hub_wait (None: its default)
    late_bps: float | None = None  # the first hub's downlink from the sources (a late hub)
    names: list[str] = field(default_factory=list)
    proxies: list[FaultProxy] = field(default_factory=list)
    daemons: list[RsyncDaemon] = field(default_factory=list)

    def of(self, i: int) -> list[int]:
        """The hubs (indices) the i-th other mirror lists in HUBS: two (one when there is
        one hub), each hub listed by as many."""
        return sorted({i % self.count, (i + 1) % self.count}) if self.count else []


@dataclass
class Layout:
    fleet: Path
    inventory: Path
    keys: dict[str, Path]  # source name -> pusher private key
    docroots: dict[str, Path]
    states: dict[str, Path]
    homes: dict[str, Path]
    caps: dict[str, float]
    tiered: Path | None = None  # the inventory with the hubs' tables


def lay_out(
    work: Path,
    n: int,
    seed: int,
    caps: list[float],
    proxies: list[FaultProxy],
    rsync: RsyncDaemon,
    account: MirrorAccount,
    sshds: ExitStack | None,
    hubs: Hubs,
    stack: ExitStack,
) -> Layout:
    """Lay out N mirror homes and their SSH servers: the simulated fleet's (started by the
    caller), or with `sshds` one real sshd each, started into that stack; and `hubs`: the
    fastest mirrors' rsync daemons and proxies, started into `stack`."""
    fleet = work / "fleet"
    inventory = make(fleet, n, seed, 0.0, (0.0, 0.0), (0.0, 0.0), user=account.name)
    blocks = []
    keys: dict[str, Path] = {}
    publics: dict[str, str] = {}
    for source in SOURCE_NAMES:
        key = asyncssh.generate_private_key("ssh-ed25519", comment=f"pushsync-{source}")
        path = work / "keys" / f"{source}_ed25519"
        path.parent.mkdir(parents=True, exist_ok=True)
        key.write_private_key(path)
        path.chmod(0o600)
        keys[source] = path
        publics[source] = key.export_public_key("openssh").decode().strip()
    pyz = build_client_zipapp(work / "client")
    profiles = json.loads((fleet / "profiles.json").read_text())
    argv: dict[str, list[str]] = {}
    docroots, states, homes, by_name = {}, {}, {}, {}
    fastest = sorted(range(len(profiles)), key=lambda i: -caps[i])[: hubs.count]
    for i in fastest:  # a hub serves its DocumentRoot (laid out below) from its own daemon
        name = profiles[i]["name"]
        tree = work / "mirrors" / name / "htdocs"
        daemon = RsyncDaemon(work / "hubd", tree, name=name, module=HUB_MODULE, anonymous=True)
        proxy = stack.enter_context(FaultProxy(daemon.host, daemon.port))
        proxy.set("pass", aggregate_bps=hubs.egress_bps)
        hubs.names.append(name)
        hubs.daemons.append(daemon)
        hubs.proxies.append(proxy)
    children = [i for i in range(len(profiles)) if i not in fastest]
    late = fastest[0] if fastest and hubs.late_bps else None
    for i, m in enumerate(profiles):
        name = m["name"]
        for s, proxy in enumerate(proxies):
            rate = hubs.late_bps if i == late and hubs.late_bps else caps[i]
            proxy.add_listener(proxy_address(s, i), rate_bps=rate)
        urls = (
            f"rsync://{proxy_address(0, i)}:{proxies[0].port}",
            f"rsync://{proxy_address(1, i)}:{proxies[1].port}",
        )
        extra = {}
        if i in children and hubs.count:
            listed = hubs.of(children.index(i))
            urls_of = []
            for h in listed:
                hubs.proxies[h].add_listener(proxy_address(2, i), rate_bps=caps[i])
                where = f"{proxy_address(2, i)}:{hubs.proxies[h].port}"
                urls_of.append(f"{hubs.names[h]}=rsync://{where}/{HUB_MODULE}")
            extra["HUBS"] = '"' + " ".join(urls_of) + '"'
            m["hubs"] = [hubs.names[h] for h in listed]
        laid = mirror_home(
            work / "mirrors" / name,
            account,
            client_command(pyz),
            SOURCE_NAMES[0],
            lambda docroot, state, urls=urls, extra=extra: client_config(  # type: ignore[misc]
                docroot, state, urls, rsync.user, rsync.password, extra
            ),
        )
        argv[name] = [*client_command(pyz), "--config", str(laid.conf)]
        if sshds is not None:
            base = laid.forced_command.rsplit(" ", 1)[0]
            lines = [forced_command_line(publics[src], f"{base} {src}") for src in SOURCE_NAMES]
            sshd = sshds.enter_context(
                Sshd(work / "sshd" / name, authorized_keys=lines, account=account)
            )
            blocks.append(inventory_block(sshd_mirror(name, sshd)))
        docroots[name], states[name], homes[name] = laid.docroot, laid.state, laid.home
        by_name[name] = caps[i]
    if sshds is not None:
        inventory.write_text(LAB_INVENTORY + "\n".join(blocks))
    for daemon in hubs.daemons:
        stack.enter_context(daemon)
    tiered = None
    if hubs.count:
        tiered = work / "inventory-tiered.toml"
        tiered.write_text(tiered_inventory(inventory.read_text(), hubs, profiles))
    write_exec(
        fleet,
        argv,
        publics,
        uid=account.uid,
        gid=account.gid,
        homes={k: str(v) for k, v in homes.items()},
    )
    return Layout(fleet, inventory, keys, docroots, states, homes, by_name, tiered)


def tiered_inventory(text: str, hubs: Hubs, profiles: list[dict[str, Any]]) -> str:
    """The inventory `text` with a ``hub`` table for each hub and, for each other mirror, the
    ``hubs`` its client lists."""
    listed = {m["name"]: m.get("hubs") for m in profiles}
    blocks = []
    for fields in tomllib.loads(text)["mirrors"]:
        name = fields["name"]
        if listed.get(name):
            fields["hubs"] = listed[name]
        block = inventory_block(fields)
        if name in hubs.names:
            block += f"hub = {{ max_transfers = {hubs.max_transfers}, weight = 1 }}\n"
        blocks.append(block)
    return LAB_INVENTORY + "\n".join(blocks)


def reset(layout: Layout, prev: Path, account: MirrorAccount) -> None:
    """Every mirror back at the previous release, its client state empty."""
    for name, docroot in layout.docroots.items():
        for d in (docroot, layout.states[name]):
            for f in d.iterdir():
                if f.is_dir() and not f.is_symlink():
                    shutil.rmtree(f)
                else:
                    f.unlink()
        for f in prev.iterdir():
            shutil.copy2(f, docroot / f.name)
        (docroot / "local_test").write_text("Success")
        give_to(account, layout.homes[name])


def _served(docroot: Path) -> bool:
    try:
        return int(read_header(docroot / "daily.cvd")["version"]) == NEW["daily"]
    except (OSError, ValueError, KeyError, UnicodeDecodeError):
        return False


def _syncd_config(
    work: Path, layout: Layout, balanced: bool, max_transfers: int, hub_wait: float | None
) -> Path:
    policy: dict[str, object] = {
        "connect_timeout": 10,
        "login_timeout": 10,
        "command_timeout": 600,
        "run_timeout": 1800,
        "http_check": "false",
    }
    if hub_wait is not None:
        policy["hub_wait"] = hub_wait
    text = "[policy]\n" + "".join(f"{k} = {v}\n" for k, v in policy.items())
    if balanced:  # and tiered: the same sources, the hubs are in the inventory
        for source in SOURCE_NAMES:
            text += (
                f'[[sources]]\nname = "{source}"\nkey = "{layout.keys[source]}"\n'
                f"weight = 1\nmax_transfers = {max_transfers}\n"
            )
    path = work / ("syncd-sources.toml" if balanced else "syncd-single.toml")
    path.write_text(text)
    return path


def _start(
    contender: str, work: Path, layout: Layout, new: Path, max_transfers: int, hubs: Hubs
) -> list[subprocess.Popen[bytes]]:
    run_dir = work / contender
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir()
    if contender == "old":
        contenders.RUN["command"] = contenders.COMMAND.format(run_id="old")
        mirrors = contenders.load(layout.inventory)
        known = contenders._known_hosts(mirrors, run_dir)
        return [
            subprocess.Popen(
                contenders._ssh_argv(m, layout.keys[SOURCE_NAMES[0]], known),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for m in mirrors
        ]
    sources = contender in ("syncd-balanced", "syncd-tiered")
    config = _syncd_config(run_dir, layout, sources, max_transfers, hubs.wait_s)
    inventory = layout.tiered if contender == "syncd-tiered" else layout.inventory
    assert inventory is not None, "syncd-tiered needs --hubs"
    argv = [
        str(ROOT / ".venv" / "bin" / "syncd"),
        "publish",
        "--config",
        str(config),
        "--inventory",
        str(inventory),
        "--state",
        str(work / f"{contender}.state.db"),  # its record, kept from run to run
        "--source-tree",
        str(new),
        "--json",
    ]
    if contender == "syncd-single":
        argv += ["--key", str(layout.keys[SOURCE_NAMES[0]])]
    out = (run_dir / "publish.json").open("wb")
    err = (run_dir / "publish.err").open("wb")
    return [subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=run_dir)]


def _in_flight(spans: list[tuple[float, float]], at: float) -> int:
    return sum(1 for start, end in spans if start <= at < end)


# pushes that took their slots in one scheduling pass start within this of each other, and each
# of them saw all of them in flight (syncd reads the count after the pass)
TIED_S = 0.1


def replay_capacity(
    syncs: list[tuple[str, float, float, str, dict[str, Any]]], max_transfers: int
) -> dict[str, dict[str, int]]:
    """Replay syncd's busy pacing (``syncd.publish.sources.SourceBoard``) over a run's recorded
    pushes (mirror, start, end, source, report), each with the pushes in flight per source
    when it started, in the order they ended: the capacity each source had, per source its
    lowest, its median over the second half of the run's pushes, and its last."""
    board = SourceBoard(
        [SourceSpec(name, max_transfers=max_transfers) for name in sorted({r[3] for r in syncs})]
    )
    seen: dict[str, list[int]] = {name: [] for name in board.capacity}
    for mirror, start, _, _, report in sorted(syncs, key=lambda r: r[2]):
        at = start + TIED_S
        flight = {n: sum(1 for r in syncs if r[3] == n and r[1] <= at < r[2]) for n in seen}
        board.observe(mirror, report, flight)
        for name, cap in board.capacity.items():
            seen[name].append(cap)
    return {
        name: {
            "min": min(caps),
            "median_late": int(statistics.median(caps[len(caps) // 2 :])),
            "last": caps[-1],
        }
        for name, caps in seen.items()
        if caps
    }


def record_digest(db: Path, max_transfers: int) -> dict[str, Any]:
    """What one syncd run's record shows: attempts by verdict, busy answers (per source, from
    the clients' reports), pushes in flight per source and the capacity syncd's pacing gave
    each (replayed), each failed mirror's attempts."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:  # the last run only: the record keeps the earlier ones
        last = conn.execute("SELECT run_id FROM publish_runs ORDER BY started_at DESC LIMIT 1")
        run_id = (last.fetchone() or ("",))[0]
        rows = conn.execute(
            "SELECT mirror, number, verb, started_at, finished_at, verdict, outcome, "
            "exit_status, error, report, source FROM publish_attempts WHERE run_id = ? "
            "ORDER BY started_at",
            (run_id,),
        ).fetchall()
        targets = conn.execute(
            "SELECT mirror, outcome, attempts, error FROM publish_targets WHERE run_id = ?",
            (run_id,),
        )
        failed = {m: (o, a, e) for m, o, a, e in targets if o != "ok"}
    finally:
        conn.close()
    t0 = min((r[3] for r in rows), default=0.0)
    verdicts: dict[str, int] = {}
    busy_rsync: dict[str, int] = {}  # client rsync attempts answered max connections
    busy_pushes = 0  # pushes whose report ended rsync_busy (every source busy)
    spans: dict[str, list[tuple[float, float]]] = {}
    syncs: list[tuple[str, float, float, str, dict[str, Any]]] = []
    for mirror, _, verb, start, end, verdict, _, _, _, report, source in rows:
        verdicts[f"{verb} {verdict}"] = verdicts.get(f"{verb} {verdict}", 0) + 1
        doc = json.loads(report) if report else {}
        attempts = doc.get("attempts") if isinstance(doc, dict) else None
        for a in attempts if isinstance(attempts, list) else ():
            if isinstance(a, dict) and str(a.get("error") or "").startswith("rsync_busy"):
                busy_rsync[str(a.get("source"))] = busy_rsync.get(str(a.get("source")), 0) + 1
        error = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(error, dict) and error.get("kind") == "rsync_busy":
            busy_pushes += 1
        if verb == "sync" and end is not None:
            spans.setdefault(source or "(one key)", []).append((start - t0, end - t0))
            if source:
                syncs.append((mirror, start, end, source, doc))
    in_flight = {}
    for source, ss in sorted(spans.items()):
        starts = sorted(s for s, _ in ss)
        late = starts[len(starts) // 2 :]
        in_flight[source] = {
            "peak": max(_in_flight(ss, s) for s in starts),
            "settled_median": statistics.median(_in_flight(ss, s) for s in late),
            "pushes": len(ss),
        }
    return {
        "attempts": verdicts,
        "busy_rsync_answers": busy_rsync,
        "busy_pushes": busy_pushes,
        "in_flight": in_flight,
        "capacity": replay_capacity(syncs, max_transfers) if syncs else None,
        "failed": {
            m: {
                "outcome": o,
                "attempts": a,
                "error": e,
                "tries": [
                    {
                        "number": r[1],
                        "verb": r[2],
                        "start_s": round(r[3] - t0, 3),
                        "end_s": None if r[4] is None else round(r[4] - t0, 3),
                        "verdict": r[5],
                        "error": r[8],
                    }
                    for r in rows
                    if r[0] == m
                ],
            }
            for m, (o, a, e) in sorted(failed.items())
        },
    }


def keep_run(run_dir: Path, keep: Path) -> None:
    """Copy a syncd run's record and output to `keep`, with ``syncd runs show`` of it."""
    keep.mkdir(parents=True, exist_ok=True)
    state = run_dir.parent / f"{run_dir.name}.state.db"  # the contender's record
    for f in [*run_dir.glob("publish.*"), *run_dir.glob("*.toml"), state]:
        if f.exists():
            shutil.copy2(f, keep / ("state.db" if f == state else f.name))
    try:
        run_id = json.loads((run_dir / "publish.json").read_text())["run_id"]
    except (OSError, ValueError, KeyError):
        return
    syncd = str(ROOT / ".venv" / "bin" / "syncd")
    for suffix, extra in ((".txt", []), (".json", ["--json"])):
        out = subprocess.run(
            [syncd, "runs", "show", str(run_id), "--state", str(state), *extra],
            capture_output=True,
            timeout=120,
            check=False,
        )
        (keep / f"runs-show{suffix}").write_bytes(out.stdout + out.stderr)


def _quantile(times: list[float], q: float, n: int) -> float | None:
    k = max(1, round(q * n))
    return round(times[k - 1], 3) if len(times) >= k else None


def run_one(
    contender: str,
    work: Path,
    layout: Layout,
    prev: Path,
    new: Path,
    proxies: list[FaultProxy],
    egress_bps: float,
    account: MirrorAccount,
    timeout_s: float,
    max_transfers: int,
    hubs: Hubs,
    keep: Path | None = None,
    check_late_s: float | None = None,
) -> Result:
    reset(layout, prev, account)
    marks = [p.stats.copy() for p in proxies]
    hub_marks = [p.stats.copy() for p in hubs.proxies]
    t0, started_unix = time.monotonic(), time.time()
    procs = _start(contender, work, layout, new, max_transfers, hubs)
    pending = dict(layout.docroots)
    done: dict[str, float] = {}
    done_unix: dict[str, float] = {}  # the same, in unix time (the record's clock)
    looked = dict.fromkeys(pending, time.time())  # each mirror's last poll that did not see it
    window = 0.0  # the longest time a served file could have gone unseen (a poll's lag)
    deadline = t0 + timeout_s
    while time.monotonic() < deadline:
        for name, docroot in list(pending.items()):
            now = time.time()
            if _served(docroot):
                done[name] = time.monotonic() - t0
                done_unix[name] = now
                window = max(window, now - looked[name])
                del pending[name]
            else:
                looked[name] = now
        if not pending and all(p.poll() is not None for p in procs):
            break
        ended = all(p.poll() is not None for p in procs) and contender != "old"
        if ended and time.monotonic() - t0 > max(done.values(), default=0) + 5:
            break  # syncd has ended: whatever is not served now will not be (a failure)
        time.sleep(0.05)
    wall = time.monotonic() - t0
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(10)
    failed = set(pending)
    reasons: list[str] = [f"{m}: not served" for m in sorted(pending)[:5]]
    if contender == "old":
        failed |= {m for m, p in zip(layout.docroots, procs, strict=True) if p.returncode != 0}
    else:
        try:
            doc = json.loads((work / contender / "publish.json").read_text())
            bad = [m for m in doc["mirrors"] if m["outcome"] != "ok"]
            failed |= {m["name"] for m in bad}
            reasons += [f"{m['name']}: {m['outcome']} {m.get('error')}" for m in bad[:5]]
        except (OSError, ValueError, KeyError):
            failed |= set(layout.docroots)
    record = None
    propagation = None
    if contender != "old" and (work / f"{contender}.state.db").exists():
        record = record_digest(work / f"{contender}.state.db", max_transfers)
        if check_late_s is not None:
            propagation = _check_propagation(
                work / contender,
                work / f"{contender}.state.db",
                layout,
                done_unix,
                window,
                check_late_s,
            )
            if "error" not in propagation:  # syncd's startup, before its run's start
                propagation["publish_started_after_s"] = round(
                    propagation["started_at"] - started_unix, 3
                )
        if keep is not None:
            keep_run(work / contender, keep)
            for log in layout.fleet.glob("lag-*.log"):  # the fleet's late wake-ups, unix times
                shutil.copy2(log, keep / log.name)
            (keep / "started_unix").write_text(f"{started_unix:.3f}\n")
    by_source = {
        s: p.stats.since(mark).bytes_down
        for s, p, mark in zip(SOURCE_NAMES, proxies, marks, strict=True)
    }
    by_source["hubs"] = sum(
        p.stats.since(mark).bytes_down for p, mark in zip(hubs.proxies, hub_marks, strict=True)
    )
    if contender == "syncd-tiered":  # the hubs' egress adds to the sources'
        egress_bps += hubs.count * hubs.egress_bps
    n = len(layout.docroots)
    total = sum(by_source.values())
    per_mirror = total / n
    slowest = per_mirror / min(layout.caps.values())
    egress = total / egress_bps
    limit = max(slowest, egress)
    times = sorted(done.values())
    t100 = round(times[-1], 3) if len(times) == n else None
    return Result(
        contender,
        n,
        _quantile(times, 0.50, n),
        _quantile(times, 0.95, n),
        t100,
        round(times[-1], 3) if times else None,
        len(times),
        len(failed),
        reasons[:5],
        by_source,
        round(wall, 3),
        round(limit, 3),
        round(slowest, 3),
        round(egress, 3),
        round(t100 / limit, 3) if t100 is not None and limit > 0 else None,
        record,
        [_quantile(times, q / 10, n) for q in range(1, 11)],
        [
            {"mirror": m, "served_s": round(t, 3), "downlink_MBps": round(layout.caps[m] / MB, 4)}
            for m, t in sorted(done.items(), key=lambda kv: kv[1])[-5:]
        ],
        _but_late_hub(done, n, hubs) if contender == "syncd-tiered" else None,
        propagation,
    )


def _check_propagation(
    run_dir: Path,
    db: Path,
    layout: Layout,
    done_unix: dict[str, float],
    window: float,
    late_s: float,
) -> dict[str, Any]:
    """The record's propagation of this run against the disk times (`propagation_check`):
    the record may be earlier than the disk by the poller's longest lag (`window`), later by
    `late_s`."""
    try:
        run_id = str(json.loads((run_dir / "publish.json").read_text())["run_id"])
    except (OSError, ValueError, KeyError) as e:
        return {"error": f"no run id in publish.json: {e}"}
    disk: dict[str, float | None] = {m: done_unix.get(m) for m in layout.docroots}
    try:
        out = propagation_check.check(db, run_id, disk, early_s=window, late_s=late_s)
    except ValueError as e:
        return {"error": str(e)}
    print(propagation_check.table(out), file=sys.stderr, flush=True)
    return out


def _but_late_hub(done: dict[str, float], n: int, hubs: Hubs) -> float | None:
    """When every mirror but the late hub is served, with --late-hub-s (else None)."""
    if not hubs.late_bps or not hubs.names:
        return None
    others = [t for m, t in done.items() if m != hubs.names[0]]
    return round(max(others), 3) if len(others) == n - 1 else None


def bench(
    n: int, args: argparse.Namespace, account: MirrorAccount
) -> tuple[list[Result], dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-served-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)  # the mirror account reaches its home below
        prev, new = build_trees(work, args.scale)
        changed = {
            f.name: f.stat().st_size
            for f in sorted(new.iterdir())
            if not (prev / f.name).is_file() or (prev / f.name).read_bytes() != f.read_bytes()
        }
        caps = draw_caps(n, args.seed, args.mirror_mbps, args.mirror_sigma)
        egress = args.source_mbps * MB
        with (
            RsyncDaemon(
                work / "rsyncd", new, name="rsync1", max_connections=args.max_connections
            ) as r1,
            RsyncDaemon(
                work / "rsyncd", new, name="rsync2", max_connections=args.max_connections
            ) as r2,
            FaultProxy(r1.host, r1.port) as p1,
            FaultProxy(r2.host, r2.port) as p2,
        ):
            for p in (p1, p2):
                p.set("pass", aggregate_bps=egress)
            via = args.via if args.via != "auto" else "sshd" if n <= 10 else "fleet"
            results: list[Result] = []
            warmups: list[Result] = []
            # no daemons to start unless syncd-tiered pushes through hubs
            count = (args.hubs or max(1, n // 50)) if "syncd-tiered" in args.contenders else 0
            late = sum(changed.values()) / args.late_hub_s if args.late_hub_s else None
            hubs = Hubs(count, args.hub_mbps * MB, args.hub_transfers, args.hub_wait, late)
            with ExitStack() as servers:
                sshds = servers.enter_context(ExitStack()) if via == "sshd" else None
                layout = lay_out(
                    work, n, args.seed, caps, [p1, p2], r1, account, sshds, hubs, servers
                )
                if via == "fleet":
                    servers.enter_context(Fleet(layout.fleet))
                warm = [c for c in args.contenders if c != "old"] if args.warmup else []
                rounds = [(-1, warm)] + [
                    (rep, list(args.contenders)[:: -1 if rep % 2 else 1])
                    for rep in range(args.reps)
                ]
                for rep, order in rounds:
                    for contender in order:
                        r = run_one(
                            contender,
                            work,
                            layout,
                            prev,
                            new,
                            [p1, p2],
                            2 * egress,
                            account,
                            args.timeout,
                            args.max_transfers,
                            hubs,
                            args.keep / f"n{n}-{rep}-{contender}" if args.keep else None,
                            args.late_bound_s if args.check_propagation else None,
                        )
                        print(json.dumps({**asdict(r), "warmup": rep < 0}), flush=True)
                        (warmups if rep < 0 else results).append(r)
        tree_bytes = sum(f.stat().st_size for f in new.iterdir())
    setup = {
        "n": n,
        "via": via,
        "scale": args.scale,
        "source_egress_MBps": args.source_mbps,
        "max_connections": args.max_connections,
        "max_transfers": args.max_transfers,
        "mirror_downlink_MBps": {
            "median": args.mirror_mbps,
            "sigma": args.mirror_sigma,
            "min": round(min(caps) / MB, 3),
            "max": round(max(caps) / MB, 3),
        },
        "hubs": {
            "count": hubs.count,
            "egress_MBps": args.hub_mbps,
            "max_transfers": args.hub_transfers,
            "listed_per_mirror": min(2, hubs.count),
            "hub_wait_s": args.hub_wait,
            "late_hub": {"name": hubs.names[0], "pull_s": args.late_hub_s}
            if args.late_hub_s and hubs.names
            else None,
        },
        "warmup": [asdict(r) for r in warmups],
        "tree_bytes": tree_bytes,
        "changed_bytes": sum(changed.values()),
        "changed": sorted(changed),
    }
    return results, setup


def summarize(results: list[Result]) -> list[dict[str, Any]]:
    """Medians over the repetitions, per contender, and ratios against the same N's limit and
    the single-source push."""
    rows: list[dict[str, Any]] = []
    for n in sorted({r.n for r in results}):
        for c in CONTENDERS:
            rs = [r for r in results if r.n == n and r.contender == c]
            if not rs:
                continue

            def med(key: str, rs: list[Result] = rs) -> float | None:
                vals = [getattr(r, key) for r in rs if getattr(r, key) is not None]
                return round(statistics.median(vals), 3) if len(vals) == len(rs) else None

            rows.append(
                {
                    "n": n,
                    "contender": c,
                    **{k: med(k) for k in ("t50_s", "t95_s", "t100_s", "limit_s")},
                    "t100_over_limit": med("t100_over_limit"),
                    "failures": sum(r.failures for r in rs),
                    "bytes_by_source": {
                        s: int(statistics.median(r.bytes_by_source[s] for r in rs))
                        for s in (*SOURCE_NAMES, "hubs")
                    },
                }
            )
        single = next((r for r in rows if r["n"] == n and r["contender"] == "syncd-single"), None)
        for row in rows:
            if row["n"] == n and single and single["t100_s"] and row["t100_s"]:
                row["single_over_t100"] = round(single["t100_s"] / row["t100_s"], 3)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The summary as the Markdown table of benchmarks/README.md."""
    head = (
        "| N | contender | t50 s | t95 s | t100 s | limit s | t100 / limit "
        "| single / t100 | rsync1 MB | rsync2 MB | hubs MB | failures |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r['n']} | {r['contender']} | {r['t50_s']} | {r['t95_s']} | {r['t100_s']} "
        f"| {r['limit_s']} | {r['t100_over_limit']} | {r.get('single_over_t100', '-')} "
        + " | ".join(f"{r['bytes_by_source'][s] / MB:.1f}" for s in (*SOURCE_NAMES, "hubs")).join(
            ["| ", " "]
        )
        + f"| {r['failures']} |"
        for r in rows
    ]
    return head + "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.served",
        description="Release-to-served with real rsync daemons behind egress caps, real clients.",
    )
    ap.add_argument("--n", type=int, nargs="+", default=[5])
    ap.add_argument("--scale", type=float, default=0.005, help="fraction of the real file sizes")
    ap.add_argument("--source-mbps", type=float, default=2.0, help="each source's egress, MB/s")
    ap.add_argument("--mirror-mbps", type=float, default=0.2, help="median mirror downlink, MB/s")
    ap.add_argument("--mirror-sigma", type=float, default=0.5, help="log-normal spread of it")
    ap.add_argument("--max-transfers", type=int, default=50, help="per source, syncd-balanced")
    ap.add_argument(
        "--hubs", type=int, help="hubs of syncd-tiered (default: one per 50 mirrors, at least one)"
    )
    ap.add_argument("--hub-mbps", type=float, default=2.0, help="each hub's egress, MB/s")
    ap.add_argument("--hub-transfers", type=int, default=20, help="each hub's max_transfers")
    ap.add_argument(
        "--hub-wait", type=float, help="syncd's [policy] hub_wait, seconds (default: syncd's)"
    )
    ap.add_argument(
        "--late-hub-s",
        type=float,
        default=0.0,
        help="make the first hub late: its downlink from the sources is capped so that its own "
        "pull takes about this many seconds (0: no late hub)",
    )
    ap.add_argument(
        "--max-connections",
        type=int,
        default=0,
        help="rsync's max connections on each daemon (0: no limit); over it a client is busy",
    )
    ap.add_argument(
        "--keep",
        type=Path,
        help="keep each syncd run's record, publish output and 'syncd runs show' here",
    )
    ap.add_argument(
        "--check-propagation",
        action="store_true",
        help="after each syncd run, compare the propagation its record gives (as 'syncd "
        "releases' computes it) with the served times on disk (needs --reps 1, no --warmup)",
    )
    ap.add_argument(
        "--late-bound-s",
        type=float,
        default=1.0,
        help="with --check-propagation: how much later than its client's reported end a mirror's "
        "served time in the record may be (the client's exit, the SSH channel's end, syncd's "
        "judgement); the client's own tail after the file landed is added per mirror",
    )
    ap.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument(
        "--warmup",
        action="store_true",
        help="publish once with each syncd contender first, unmeasured: the measured runs then "
        "have a record (slowest first, learned rates), as syncd has from one release to the next",
    )
    ap.add_argument(
        "--via",
        choices=("auto", "sshd", "fleet"),
        default="auto",
        help="SSH servers: real sshd per mirror, or the asyncssh fleet (auto: sshd up to N=10)",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=300.0, help="per contender run, seconds")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if not 0 < args.scale <= 1:
        sys.exit("--scale must be in (0, 1]: the fraction of the real sizes, e.g. 0.005")
    if args.late_hub_s < 0 or (args.hub_wait is not None and args.hub_wait <= 0):
        sys.exit("--late-hub-s must be 0 or more and --hub-wait more than 0, in seconds")
    if args.check_propagation and (args.warmup or args.reps != 1):
        sys.exit(
            "--check-propagation needs one run per record: --reps 1 and no --warmup (the record "
            "makes one release of every run of the same versions, timed from the first)"
        )
    if args.max_connections < 0:
        sys.exit("--max-connections must be 0 (no limit) or more, e.g. 20")
    tiered = "syncd-tiered" in args.contenders
    if tiered and args.hubs is not None and not 0 < args.hubs < min(args.n):
        sys.exit("syncd-tiered needs --hubs between 1 and N-1 (the hubs are mirrors)")
    if max(args.n) > 1000:
        sys.exit("--n is bounded at 1000 mirrors (loopback addresses and descriptors)")
    contenders.raise_nofile()
    account = mirror_account()
    results: list[Result] = []
    setups = []
    for n in args.n:
        rs, setup = bench(n, args, account)
        results += rs
        setups.append(setup)
    summary = summarize(results)
    doc = {
        "setup": setups,
        "summary": summary,
        "runs": [asdict(r) for r in results],
    }
    print(table(summary))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
