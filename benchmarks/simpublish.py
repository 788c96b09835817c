"""Release-to-served at internet scale: ``syncd publish``'s own fan-out in a network simulation.

    .venv/bin/python -m benchmarks.simpublish validate --out benchmarks/results/netsim-validate.json
    .venv/bin/python -m benchmarks.simpublish sweep --n 500 1000 2000 5000 \
        --out benchmarks/results/netsim-sweep.json

What runs is syncd's: the plan (`syncd.publish.plan.plan`, slowest first by the record), the
split over sources and hubs (`syncd.publish.sources.plan_tiers`, learned rates from the record's
reports), and the fan-out itself (`syncd.publish.fanout.Publisher`: its limiters, the hubs
pushed first, ``hub_wait``, the second wave, the retries on tenacity's backoff, the pacing of a
source that answered busy, failover), with the record (`syncd.publish.store.PublishStore`) in
an in-memory SQLite, all under trio's ``MockClock`` (autojump): simulated time, no sleep.
Only the other side of the ssh adapter is modelled (`SimTransport`: what a mirror's
``clam-clientsync`` does when pushed, and the network beneath it):

- the handshake: ``handshake_rtts`` round trips of the mirror's RTT and syncd's CPU per
  connection (one core: a FIFO), or a refused connection for a mirror that is down;
- the client: its start (``client_start_s``), then rsync from the hub the request names, the
  source of the pusher key, the other source, in the client's order
  (`clientside.core.config.hub_first`): each attempt ``rsync_rtts`` round trips, then the
  release's bytes (``release_bytes`` plus rsync's ``overhead_bytes``) as one flow over the
  source's (or hub's) egress and the mirror's downlink (`benchmarks.netsim`: max-min fair,
  recomputed at every start and end); a daemon at its ``max connections`` answers busy; a
  source or hub that is down refuses; a hub that fails cuts its transfers, and the client goes
  on to the next source; then verification (``verify_Bps``) and publication, at which moment
  the mirror serves the release (and, if it is a hub, its daemon serves it);
- its report, built with pushwire's own functions (`pushwire.report`), parsed and judged by
  syncd as any other.

Optionally the machine's CPU (``machine_cores``): the benchmark's 2 cores shared by every
client start, handshake and verification (a link of that capacity, each job also capped at
one core), to show where the real benchmark is CPU-bound.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import random
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import trio
import trio.testing

from benchmarks.netsim import Link, LinkDown, Network
from pushwire import report as wire
from pushwire.request import parse_request
from syncd.inventory.model import Hub, Inventory, Mirror
from syncd.publish.config import Policy
from syncd.publish.errors import Unreachable
from syncd.publish.fanout import Publisher
from syncd.publish.job import hubs_of
from syncd.publish.plan import order_seconds, plan
from syncd.publish.request import new_run_id
from syncd.publish.sources import SourceSpec, measured_rates, plan_tiers
from syncd.publish.ssh import Reply
from syncd.publish.store import PublishStore
from syncd.sqlite import open_db

T = TypeVar("T")
MB = 1_000_000
SOURCES = ("rsync1.clamav.net", "rsync2.clamav.net")
EXPECTED = {"daily": 28034, "main": 62, "bytecode": 335}
PINS = {db: f"{i:032x}" for i, db in enumerate(sorted(EXPECTED), start=1)}
EPOCH = 1_800_000_000.0  # the wall clock at the first release's time 0 (the record, reports)
RELEASE_EVERY_S = 6 * 3600.0  # the next simulated release starts this much later
CONTENDERS = ("single", "balanced", "tiered")
# every simulated mirror pins the same host key: the simulation never reaches ssh
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHDD/EQ19Pt8lfSSn4KJJFQxiF68kX+BfElxRIsBnReP"


@dataclass(frozen=True)
class Scenario:
    """One simulated publish: the fleet, the network, the faults and syncd's settings."""

    n: int
    contender: str = "balanced"  # single, balanced, tiered
    seed: int = 1
    # the release: bytes each mirror must pull, and rsync's protocol on top
    release_bytes: float = 60 * MB
    overhead_bytes: float = 2117.0  # measured: 304,104 B forwarded per mirror for 301,987 changed
    # the network (bytes per second)
    source_Bps: float = 125 * MB  # each source's egress (1 Gbit/s)
    mirror_Bps: float = 12.5 * MB  # median mirror downlink (100 Mbit/s), log-normal
    mirror_sigma: float = 0.5
    slow_fraction: float = 0.02  # this share of the mirrors at slow_Bps
    slow_Bps: float = 1.25 * MB  # 10 Mbit/s
    rtt_s: tuple[float, float] = (0.02, 0.2)  # each mirror's round trip, uniform
    # fixed costs
    startup_s: float = 0.65  # syncd's start-up before its first push
    handshake_rtts: int = 9
    handshake_cpu_s: float = 0.003  # syncd's CPU per mirror (one core)
    client_start_s: float = 0.085  # the client's start (CPU on the mirror)
    rsync_rtts: int = 4  # connect, greeting and auth, file list
    verify_Bps: float = 400 * MB  # the client's MD5 of what it pulled
    # sources and hubs
    max_transfers: int = 50  # per source, with [[sources]]
    max_connections: int = 0  # rsync's on each source daemon (0: none)
    hubs: int = 0  # tiered: the fastest mirrors serve a second wave
    hub_Bps: float = 125 * MB  # each hub's egress
    hub_transfers: int = 20
    hub_wait: float | None = None  # None: syncd's default
    hubs_listed: int = 2  # hubs each other mirror lists in its HUBS
    # faults
    late_hub_s: float = 0.0  # the first hub's own pull takes about this long (0: not late)
    hub_down: bool = False  # the first hub is unreachable (its push fails)
    hub_fails_at: float | None = None  # the first hub's daemon dies then (mid-wave)
    source_down: bool = False  # rsync1 refuses every connection
    # the benchmark machine's CPU (None: every mirror and syncd have their own)
    machine_cores: float | None = None
    # the served benchmark's mirror profile (benchmarks.served.draw_caps, no slow share)
    served_profile: bool = False
    policy: Mapping[str, Any] = field(default_factory=dict)  # syncd [policy] overrides


@dataclass
class SimResult:
    scenario: dict[str, Any]
    rep: int
    t50_s: float | None
    t95_s: float | None
    t100_s: float | None
    t100_healthy_s: float | None  # every mirror but a faulty hub
    served: int
    failures: int
    failed_examples: list[str]
    bytes_by_source: dict[str, float]
    limit_s: float
    limit_egress_s: float
    limit_slowest_s: float
    t100_over_limit: float | None
    attempts: int
    busy_answers: int
    events: int


def draw_downlinks(sc: Scenario) -> list[float]:
    """Each mirror's downlink in bytes/s: the served benchmark's draw (same seed and
    profile), or log-normal around `mirror_Bps` with `slow_fraction` of them at `slow_Bps`."""
    if sc.served_profile:
        from benchmarks.served import draw_caps

        return draw_caps(sc.n, sc.seed, sc.mirror_Bps / MB, sc.mirror_sigma)
    rng = random.Random(sc.seed)
    caps = [sc.mirror_Bps * rng.lognormvariate(0, sc.mirror_sigma) for _ in range(sc.n)]
    slow = rng.sample(range(sc.n), round(sc.slow_fraction * sc.n))
    for i in slow:
        caps[i] = sc.slow_Bps
    return caps


def name_of(i: int) -> str:
    return f"sim{i:04d}.mirror.test"  # as the served benchmark's fleet names them


@dataclass(eq=False)
class Node:
    """A mirror: its downlink, its round trip, and what it serves; a hub also has its egress."""

    name: str
    downlink: Link
    rtt: float
    egress: Link | None = None  # a hub's daemon
    hub_transfers_now: int = 0
    unreachable: bool = False
    serves_at: float | None = None  # when it published the release
    last_report: dict[str, Any] | None = None
    syncing: bool = False


@dataclass(eq=False)
class Daemon:
    """A source's rsync daemon: its egress and its ``max connections``."""

    name: str
    egress: Link
    max_connections: int = 0
    connections: int = 0
    down: bool = False


class World:
    """The simulated fleet and network of one scenario (the mirrors' side of the ssh
    adapter). `busy_answers` counts the rsync attempts a daemon answered busy."""

    def __init__(self, sc: Scenario, caps: Sequence[float]) -> None:
        self.sc = sc
        self.net = Network()
        rng = random.Random(sc.seed + 1)
        self.daemons = {
            s: Daemon(s, Link(f"{s} egress", sc.source_Bps), sc.max_connections) for s in SOURCES
        }
        if sc.source_down:
            self.daemons[SOURCES[0]].down = True
        self.nodes = {
            name_of(i): Node(name_of(i), Link(f"{name_of(i)} downlink", c), rng.uniform(*sc.rtt_s))
            for i, c in enumerate(caps)
        }
        self.cpu = Link("machine cpu", sc.machine_cores) if sc.machine_cores else None
        self.syncd_core = Link("syncd's core", 1.0) if sc.machine_cores else None
        self._syncd_lock = trio.Lock()  # syncd's one core without a machine model: a FIFO
        self.busy_answers = 0
        self.hub_names: list[str] = []

    def make_hub(self, name: str) -> None:
        self.nodes[name].egress = Link(f"{name} hub egress", self.sc.hub_Bps)
        self.hub_names.append(name)

    async def cpu_job(self, seconds: float, core: Link | None = None) -> None:
        """`seconds` of CPU: on the machine's shared cores when modelled, else its own."""
        if self.cpu is None:
            await trio.sleep(seconds)
            return
        await self.net.transfer([self.cpu, core or Link("a process", 1.0)], seconds)

    async def handshake(self, node: Node) -> None:
        if node.unreachable:
            await trio.sleep(node.rtt)
            raise Unreachable(f"{node.name}: connection refused")
        if self.cpu is not None:
            await self.cpu_job(self.sc.handshake_cpu_s, self.syncd_core)
        else:
            async with self._syncd_lock:
                await trio.sleep(self.sc.handshake_cpu_s)
        await trio.sleep(self.sc.handshake_rtts * node.rtt)

    async def sync(self, node: Node, key_source: str, request: str) -> dict[str, Any]:
        """What the mirror's client does with a ``sync`` (or ``status``) request; its report."""
        req = parse_request(request)
        if req.verb == "status":
            return node.last_report or {}
        started = trio.current_time()
        rep = wire.new_report("sync", _when(started), "sim", key_source)
        rep["run_id"] = req.run_id
        if node.syncing:  # the client's lock: our push is remembered, the sync goes round again
            rep["status"] = "queued"
            return rep
        node.syncing = True
        try:
            return await self._sync(node, key_source, req.source, rep, started)
        finally:
            node.syncing = False

    async def _sync(
        self,
        node: Node,
        key_source: str,
        hub: str | None,
        rep: wire.Report,
        started: float,
    ) -> dict[str, Any]:
        sc = self.sc
        await self.cpu_job(sc.client_start_s)
        order = [key_source, *(s for s in SOURCES if s != key_source)]
        if hub is not None:
            order.insert(0, hub)
        size = sc.release_bytes + sc.overhead_bytes
        error: tuple[str, str] | None = None
        for src in order:
            began = trio.current_time()
            await trio.sleep(sc.rsync_rtts * node.rtt)
            failure = await self._rsync(node, src, size)
            took = trio.current_time() - began
            if failure is None:
                await self.cpu_job(size / sc.verify_Bps)
                rep["attempts"].append(wire.attempt(src, 0, took, None))
                rep["source_used"] = src
                rep["bytes_transferred"] = int(size)
                rep["files_transferred"] = 4
                rep["databases"] = _databases(EXPECTED)
                node.serves_at = trio.current_time()
                ended = wire.finish(rep, "ok", _when(started), _when(node.serves_at))
                node.last_report = dict(ended)
                return node.last_report
            kind, message, code = failure
            self.busy_answers += kind == wire_busy()
            rep["attempts"].append(wire.attempt(src, code, took, f"{kind}: {message}"))
            error = (kind, f"{src}: {message}")
        assert error is not None
        wire.set_error(rep, *error)
        rep["databases"] = _databases({db: v - 1 for db, v in EXPECTED.items()})
        node.last_report = dict(
            wire.finish(rep, "failed", _when(started), _when(trio.current_time()))
        )
        return node.last_report

    async def _rsync(self, node: Node, src: str, size: float) -> tuple[str, str, int] | None:
        """One rsync from `src` (a source or a hub): None when the release arrived, else the
        client's error kind, message and rsync's exit code."""
        sc = self.sc
        if src in self.daemons:
            daemon = self.daemons[src]
            if daemon.down:
                return "rsync_transient", "connection refused", 10
            if daemon.max_connections and daemon.connections >= daemon.max_connections:
                return wire_busy(), f"max connections ({daemon.max_connections}) reached", 5
            egress, counter = daemon.egress, daemon
        else:
            hub = self.nodes[src]
            if hub.egress is None or hub.egress.down or hub.unreachable:
                return "rsync_transient", "connection refused", 10
            if hub.serves_at is None:  # its daemon serves the old tree: the pins refuse it
                return "pin_mismatch", "the hub's daily.cvd is not the release's", 0
            egress, counter = hub.egress, None
        if counter is not None:
            counter.connections += 1
        link = node.downlink
        if node.name in self.hub_names[:1] and sc.late_hub_s and src in self.daemons:
            link = Link(f"{node.name} late", size / sc.late_hub_s)  # its own pull is slow
        try:
            await self.net.transfer([egress, link], size)
        except LinkDown as err:
            return "rsync_transient", f"connection reset ({err})", 12
        finally:
            if counter is not None:
                counter.connections -= 1
        return None


def wire_busy() -> str:
    return "rsync_busy"


def _wall(t: float) -> float:
    """The simulated wall clock at trio's time `t` (each release's run starts at trio's 0)."""
    return _BASE[0] + t


_BASE = [EPOCH]  # the current release's wall clock at its time 0


def _when(t: float) -> datetime:
    return datetime.fromtimestamp(_wall(t), UTC)


def _databases(versions: Mapping[str, int]) -> dict[str, Any]:
    return {
        db: {"file": f"{db}.cvd", "version": v, "build_time": None, "signatures": 1, "md5_ok": True}
        for db, v in versions.items()
    }


@dataclass
class SimTransport:
    """syncd's Transport (`syncd.publish.fanout.Transport`) onto the simulated fleet: logging
    in with `key_source`'s pusher key runs the client with that source."""

    world: World
    key_source: str

    async def open(self, mirror: Mirror) -> Node:
        node = self.world.nodes[mirror.name]
        await self.world.handshake(node)
        return node

    async def run(self, session: Node, request: str) -> Reply:
        rep = await self.world.sync(session, self.key_source, request)
        code = wire.exit_code(rep) if rep else 1  # type: ignore[arg-type]
        return Reply(code, json.dumps(rep).encode(), b"")

    async def close(self, session: Node) -> None:
        await trio.lowlevel.checkpoint()


@dataclass
class MemoryRecord:
    """syncd's Record (`syncd.publish.fanout.Record`) without its thread: each job runs at
    once on the store (an in-memory SQLite, kept from one simulated release to the next)."""

    store: PublishStore

    def submit(self, job: Any) -> Future[Any]:
        done: Future[Any] = Future()
        try:
            done.set_result(job(self.store))
        except Exception as err:  # the writer hands errors to whoever waits, as here
            done.set_exception(err)
        return done

    async def result(self, future: Future[T]) -> T:
        await trio.lowlevel.checkpoint()
        return future.result()


def inventory_of(sc: Scenario, caps: Sequence[float]) -> tuple[Inventory, list[str]]:
    """The fleet's inventory (the served benchmark's: the hubs are the fastest mirrors, each
    other mirror lists `hubs_listed` of them) and the hubs' names."""
    fastest = sorted(range(sc.n), key=lambda i: -caps[i])[: sc.hubs]
    children = [i for i in range(sc.n) if i not in fastest]
    mirrors = []
    for i in range(sc.n):
        listed = None
        if sc.hubs and i in children:
            k = bisect.bisect_left(children, i)  # its place among the others
            picks = sorted({(k + j) % sc.hubs for j in range(min(sc.hubs_listed, sc.hubs))})
            listed = [name_of(fastest[h]) for h in picks]
        mirrors.append(
            Mirror(
                name=name_of(i),
                host=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
                country="DE",
                host_keys=[HOST_KEY],
                hub=Hub(max_transfers=sc.hub_transfers, weight=1) if i in fastest else None,
                hubs=listed,
            )
        )
    return Inventory(allow_private_addresses=True, mirrors=mirrors), [name_of(i) for i in fastest]


def policy_of(sc: Scenario) -> Policy:
    base: dict[str, Any] = {"http_check": False}
    if sc.hub_wait is not None:
        base["hub_wait"] = sc.hub_wait
    return Policy(**{**base, **sc.policy})


class _CoinFlip(random.Random):
    """trio's generator with its production batch order: `shuffle` reverses the batch with
    probability 1/2 (what trio does to each batch of runnable tasks outside its test mode)."""

    def shuffle(self, x: Any) -> None:
        if self.random() < 0.5:
            x.reverse()


class Simulation:
    """One fleet's releases in a row, each a real `Publisher` run in simulated time, with the
    record kept between them (the second release is pushed slowest first, at learned rates)."""

    def __init__(self, sc: Scenario) -> None:
        self.sc = sc
        self.caps = draw_downlinks(sc)
        self.inventory, self.hubs = inventory_of(sc, self.caps)
        self.store = PublishStore(open_db(":memory:"))
        self.releases = 0

    def publish(self) -> SimResult:
        """Simulate one release from syncd's start to the last push's end."""
        rep = self.releases
        self.releases += 1
        random.seed(self.sc.seed * 1000 + rep)  # tenacity's jitter
        _BASE[0] = EPOCH + rep * RELEASE_EVERY_S
        world = World(self.sc, self.caps)
        clock = trio.testing.MockClock(autojump_threshold=0)
        # trio's scheduling made deterministic: each batch of runnable tasks sorted by
        # creation (ties of deadlines, frequent in simulated time, are otherwise broken by
        # object addresses), then, as trio does outside tests, reversed or not by a coin
        # (`_CoinFlip`, seeded; trio's test mode would shuffle the batch instead)
        run = trio._core._run
        before = run._ALLOW_DETERMINISTIC_SCHEDULING, run._r
        run._ALLOW_DETERMINISTIC_SCHEDULING = True  # type: ignore[misc]
        run._r = _CoinFlip(self.sc.seed * 1000 + rep)
        try:
            results = trio.run(self._publish, world, clock=clock)
        finally:
            run._ALLOW_DETERMINISTIC_SCHEDULING, run._r = before  # type: ignore[misc]
        return self._result(world, results, rep)

    async def _publish(self, world: World) -> list[Any]:
        sc, store = self.sc, self.store
        policy = policy_of(sc)
        tiered = sc.contender == "tiered" and sc.hubs > 0
        for name in self.hubs if tiered else ():
            world.make_hub(name)
        if tiered and sc.hub_down:
            world.nodes[self.hubs[0]].unreachable = True
        mirrors = plan(self.inventory, last_duration=order_seconds(store.last_pushes()))
        run_id = new_run_id(_when(0), f"{self.releases:06x}")
        store.create_run(
            run_id, _wall(0), expected=EXPECTED, request="", inventory=None,
            mirrors=[m.name for m in mirrors],
        )  # fmt: skip
        specs = (
            [SourceSpec(s, 1, sc.max_transfers) for s in SOURCES]
            if sc.contender != "single"
            else []
        )
        hubs = hubs_of(mirrors) if tiered else []  # as syncd.publish.job._publish with pins
        planned = {}
        if specs:
            planned = plan_tiers(
                [m.name for m in mirrors],
                specs,
                hubs,
                {m.name: m.hubs or [] for m in mirrors},
                rates=measured_rates(store.recent_reports()),
                learn_after=policy.source_learn_after,
            )
        publisher = Publisher(
            SimTransport(world, SOURCES[0]),
            MemoryRecord(store),
            run_id,
            dict(EXPECTED),
            policy,
            wall=lambda: _wall(trio.current_time()),
            handle_signals=False,
            sources=specs,
            transports={s: SimTransport(world, s) for s in SOURCES},
            planned=planned,
            hubs=hubs,
            pins=PINS if tiered else {},
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(world.net.run)
            if tiered and sc.hub_fails_at is not None:
                nursery.start_soon(self._fail_hub, world, sc.hub_fails_at)
            await trio.sleep(sc.startup_s)
            results = await publisher.run(mirrors)
            nursery.cancel_scope.cancel()
        store.finish_run(run_id, _wall(trio.current_time()), "finished")
        return results

    async def _fail_hub(self, world: World, at: float) -> None:
        await trio.sleep(at)
        node = world.nodes[self.hubs[0]]
        assert node.egress is not None
        world.net.fail(node.egress)

    def _result(self, world: World, results: Sequence[Any], rep: int) -> SimResult:
        sc = self.sc
        n = sc.n
        served = {name: node.serves_at for name, node in world.nodes.items() if node.serves_at}
        times = sorted(served.values())
        faulty = set(self.hubs[:1]) if sc.contender == "tiered" and _hub_fault(sc) else set()
        healthy = [t for m, t in served.items() if m not in faulty]
        failed = [r for r in results if r.outcome.value != "ok"]
        size = sc.release_bytes + sc.overhead_bytes
        by_source = {s: d.egress.carried for s, d in world.daemons.items()}
        by_source["hubs"] = sum(
            node.egress.carried for node in world.nodes.values() if node.egress is not None
        )
        limit, egress_limit, slowest = topology_limit(sc, self.caps, size)
        t100 = times[-1] if len(times) == n else None
        return SimResult(
            scenario=_scenario_dict(sc),
            rep=rep,
            t50_s=_quantile(times, 0.5, n),
            t95_s=_quantile(times, 0.95, n),
            t100_s=_round(t100),
            t100_healthy_s=_round(max(healthy)) if len(healthy) >= n - len(faulty) else None,
            served=len(times),
            failures=len(failed),
            failed_examples=[f"{r.name}: {r.outcome.value} {r.error}" for r in failed[:5]],
            bytes_by_source={k: round(v / MB, 3) for k, v in by_source.items()},
            limit_s=round(limit, 3),
            limit_egress_s=round(egress_limit, 3),
            limit_slowest_s=round(slowest, 3),
            t100_over_limit=round(t100 / limit, 3) if t100 else None,
            attempts=sum(r.attempts for r in results),
            busy_answers=world.busy_answers,
            events=world.net.recomputed,
        )


def _hub_fault(sc: Scenario) -> bool:
    return bool(sc.late_hub_s or sc.hub_down or sc.hub_fails_at is not None)


def _scenario_dict(sc: Scenario) -> dict[str, Any]:
    d = asdict(sc)
    d["policy"] = dict(sc.policy)
    return d


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def _quantile(times: list[float], q: float, n: int) -> float | None:
    k = max(1, round(q * n))  # as benchmarks.served
    return round(times[k - 1], 3) if len(times) >= k else None


def topology_limit(sc: Scenario, caps: Sequence[float], size: float) -> tuple[float, float, float]:
    """The physical limit of the topology, transfers only: (limit, egress bound, slowest
    mirror's own pull). Single: one source's egress; balanced: both; tiered: the tree, where
    the i-th hub to hold the release can do so no earlier than the sources can have sent i
    copies (at their egress, fastest hubs first) nor than its own downlink allows, and serves
    from then on at its egress; the limit is when sources and hubs can have sent N copies."""
    slowest = size / min(caps)
    sources = 1 if sc.contender == "single" else len(SOURCES)
    egress = sources * sc.source_Bps
    total = sc.n * size
    if sc.contender != "tiered" or not sc.hubs:
        return max(slowest, total / egress), total / egress, slowest
    downs = sorted(caps, reverse=True)[: sc.hubs]
    ready = sorted(max((i + 1) * size / egress, size / d) for i, d in enumerate(downs))

    def sent(t: float) -> float:
        return egress * t + sum(sc.hub_Bps * max(0.0, t - r) for r in ready)

    lo, hi = 0.0, total / egress
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sent(mid) < total else (lo, mid)
    return max(slowest, hi), hi, slowest


def simulate(sc: Scenario, reps: int = 1) -> list[SimResult]:
    """`reps` releases in a row on one fleet and record (the first on an empty record)."""
    sim = Simulation(sc)
    return [sim.publish() for _ in range(reps)]


# the command line: validation against the served benchmark, and the sweeps past the machine


def served_scenario(n: int, contender: str, **kw: Any) -> Scenario:
    """The served benchmark at the real durations (``--source-mbps 0.625 --mirror-mbps 0.0625
    --hub-mbps 0.625``, scale 0.005, seed 1), as benchmarks.served sets it up: loopback (no
    round trips), syncd's policy as its syncd.toml, one hub per 50 mirrors."""
    base: dict[str, Any] = {
        "n": n,
        "contender": contender,
        "release_bytes": 301987.0,
        "source_Bps": 0.625 * MB,
        "mirror_Bps": 0.0625 * MB,
        "served_profile": True,
        "rtt_s": (0.0005, 0.0005),
        "verify_Bps": 50 * MB,
        "hubs": max(1, n // 50) if contender == "tiered" else 0,
        "hub_Bps": 0.625 * MB,
        "policy": {
            "connect_timeout": 10,
            "login_timeout": 10,
            "command_timeout": 600,
            "run_timeout": 1800,
        },
    }
    return Scenario(**{**base, **kw})


def _measured(path: Path) -> dict[tuple[int, str], list[dict[str, Any]]]:
    doc = json.loads(path.read_text())
    out: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for r in doc["runs"]:
        out.setdefault((r["n"], r["contender"].removeprefix("syncd-")), []).append(r)
    return out


def validate(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for path in args.measured:
        measured = _measured(path)
        for (n, contender), runs in sorted(measured.items()):
            if contender not in CONTENDERS:
                continue
            for cores in (None, 2.0):
                sc = served_scenario(n, contender, machine_cores=cores)
                sims = simulate(sc, reps=len(runs))
                for real, sim in zip(runs, sims, strict=True):
                    row = {
                        "measured_in": path.name,
                        "n": n,
                        "contender": contender,
                        "rep": sim.rep,
                        "machine_cores": cores,
                    }
                    for q in ("t50_s", "t95_s", "t100_s"):
                        m, s = real[q], getattr(sim, q)
                        row[q] = {"measured": m, "simulated": s}
                        row[q]["sim_over_measured"] = round(s / m, 3) if m and s else None
                    row["bytes_MB"] = {"measured": _mb(real["bytes_by_source"]),
                                       "simulated": sim.bytes_by_source}  # fmt: skip
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    return rows


def _mb(d: Mapping[str, float]) -> dict[str, float]:
    return {k: round(v / MB, 3) for k, v in d.items()}


def sweep(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Per N: single and balanced, and tiered for every hub count, hubs' and sources'
    max_transfers and hub_wait given; each `--reps` releases in a row (the first on an empty
    record, the others on the record the previous one left: slowest first, learned rates)."""
    rows = []
    base = {"seed": args.seed, "release_bytes": args.release_mb * MB}
    faults = {
        "none": {},
        "hub-fails": {"hub_fails_at": args.fail_at},
        "hub-down": {"hub_down": True},
        "hub-late": {"late_hub_s": args.late_s},
    }
    for n in args.n:
        plans: list[Scenario] = []
        for mt in args.max_transfers:
            if "single" in args.contenders:
                plans.append(Scenario(n, "single", **base))
            if "balanced" in args.contenders:
                plans.append(Scenario(n, "balanced", max_transfers=mt, **base))
            for k, ht, wait, fault in itertools.product(
                args.hubs, args.hub_transfers, args.hub_wait, args.faults
            ):
                if "tiered" in args.contenders and k < n:
                    kw = {**base, **faults[fault]}
                    plans.append(
                        Scenario(
                            n,
                            "tiered",
                            max_transfers=mt,
                            hubs=k,
                            hub_transfers=ht,
                            hub_wait=wait,
                            **kw,
                        )
                    )
        for sc in {repr(p): p for p in plans}.values():  # single: once for every max_transfers
            for res in simulate(sc, args.reps):
                row = _row(res)
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def _limit_scenario(n: int, h: int, args: argparse.Namespace) -> Scenario:
    contender = "tiered" if h else "balanced"
    egress = {"source_Bps": args.source_mbit / 8 * MB, "hub_Bps": args.hub_mbit / 8 * MB}
    return Scenario(n, contender, hubs=h, **egress)


def limits(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The physical limits (`topology_limit`, transfers only) of S sources and H hubs of the
    given egress for each N, and the fewest hubs within `--within` seconds."""
    rows = []
    caps = [args.mirror_mbit / 8 * MB] * max(args.n)
    size = args.release_mb * MB
    for n in args.n:
        row: dict[str, Any] = {"n": n}
        for h in args.hubs:
            sc = _limit_scenario(n, h, args)
            row[f"hubs={h}"] = round(topology_limit(sc, caps[:n], size)[0], 1)
        fewest = None
        for h in range(n):
            sc = _limit_scenario(n, h, args)
            if topology_limit(sc, caps[:n], size)[0] <= args.within:
                fewest = h
                break
        row["fewest_hubs_within"] = fewest
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def _row(res: SimResult) -> dict[str, Any]:
    sc = res.scenario
    keep = (
        "n", "contender", "hubs", "hub_transfers", "max_transfers", "hub_wait", "release_bytes",
        "hub_fails_at", "hub_down", "late_hub_s",
    )  # fmt: skip
    return {**{k: sc[k] for k in keep}, **{k: v for k, v in asdict(res).items() if k != "scenario"}}


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.simpublish",
        description="syncd publish's own scheduler in a simulated network (simulated time).",
    )
    sub = ap.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="simulate the served benchmark's runs and compare")
    v.add_argument(
        "--measured",
        type=Path,
        nargs="+",
        default=[Path("benchmarks/results/served-n500-realtime-2reps.json")],
        help="served benchmark results at the real durations (benchmarks.served --out)",
    )
    s = sub.add_parser("sweep", help="real sizes: single, balanced, tiered with k hubs, per N")
    s.add_argument("--n", type=int, nargs="+", default=[500, 1000, 2000, 5000])
    s.add_argument("--hubs", type=int, nargs="+", default=[5, 10, 20, 40, 80])
    s.add_argument("--hub-transfers", type=int, nargs="+", default=[20])
    s.add_argument("--max-transfers", type=int, nargs="+", default=[50], help="per source")
    s.add_argument("--hub-wait", type=float, nargs="+", default=[120.0])
    s.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    s.add_argument(
        "--faults", nargs="+", choices=("none", "hub-fails", "hub-down", "hub-late"),
        default=["none"], help="tiered: what happens to the first hub",
    )  # fmt: skip
    s.add_argument("--fail-at", type=float, default=15.0, help="hub-fails: its daemon dies then")
    s.add_argument("--late-s", type=float, default=60.0, help="hub-late: its own pull takes this")
    s.add_argument("--reps", type=int, default=2, help="releases in a row per setting")
    s.add_argument("--release-mb", type=float, default=60.0)
    s.add_argument("--seed", type=int, default=1)
    lim = sub.add_parser("limits", help="physical limits of 2 sources and H hubs, per N")
    lim.add_argument("--n", type=int, nargs="+", default=[500, 1000, 2000, 5000, 10000])
    lim.add_argument("--hubs", type=int, nargs="+", default=[0, 10, 20, 40, 80])
    lim.add_argument("--source-mbit", type=float, default=1000.0)
    lim.add_argument("--hub-mbit", type=float, default=1000.0)
    lim.add_argument("--mirror-mbit", type=float, default=100.0, help="every mirror's downlink")
    lim.add_argument("--release-mb", type=float, default=60.0)
    lim.add_argument("--within", type=float, default=300.0, help="seconds")
    for p in (v, s, lim):
        p.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if args.command == "sweep" and min(args.n) < 2:
        sys.exit("--n must be at least 2 mirrors")
    rows = {"validate": validate, "sweep": sweep, "limits": limits}[args.command](args)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"command": vars(args) | {"out": str(args.out)},
                                        "rows": rows}, indent=1, default=str) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
