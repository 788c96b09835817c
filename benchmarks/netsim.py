"""Transfers sharing links max-min fairly, in trio's (simulated) time.

A `Link` is anything with a capacity per second that transfers share: a source's egress, a
mirror's downlink, a hub's egress, a machine's CPU cores (then the "bytes" are CPU seconds).
A `Flow` crosses one or more links; every flow's rate is the max-min fair allocation over
all the flows running (`max_min`: progressive filling), recomputed whenever a flow starts,
ends or is cut. `Network.transfer` moves `size` units over its links and returns when they
have arrived (or raises `LinkDown` when a link it crosses fails meanwhile); `Network.run` is
the task that advances the flows, to be started in the simulation's nursery.

Under ``trio.testing.MockClock(autojump_threshold=0)`` the clock jumps to the next flow's end
whenever every task waits, so a simulated hour takes what the events take to compute.
`check` says whether an allocation keeps every link within its capacity (the tests plant a
violation to show it is caught); with ``strict=True`` the network checks itself at every
recomputation.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import trio

# a flow is done when less than a nanosecond of its rate (or a millionth of a unit) is left
_DONE_S = 1e-9
_DONE_UNITS = 1e-6
_SLACK = 1e-9  # relative tolerance of the capacity check (floating point sums)


class LinkDown(Exception):
    """A link the transfer crossed failed while it ran (the bytes sent so far are lost)."""


@dataclass(eq=False)
class Link:
    name: str
    capacity: float  # units per second, > 0
    carried: float = 0.0  # units that crossed it so far (what `Network.run` delivered)
    down: bool = False

    def __repr__(self) -> str:
        return f"Link({self.name!r}, {self.capacity:g})"


@dataclass(eq=False)
class Flow:
    links: tuple[Link, ...]
    size: float
    remaining: float
    started: float
    rate: float = 0.0
    done: trio.Event = field(default_factory=trio.Event)
    failed: str | None = None


def max_min(flows: Sequence[Flow]) -> dict[Flow, float]:
    """Return each flow's max-min fair rate over the links they cross (progressive filling:
    the link whose equal share of what is left is smallest is the bottleneck of its flows,
    which are frozen at that share; repeat). Deterministic; a heap keeps it O(F log L)."""
    crossing: dict[Link, list[Flow]] = {}
    for f in flows:
        for link in f.links:
            crossing.setdefault(link, []).append(f)
    left = {link: link.capacity for link in crossing}
    count = {link: len(fs) for link, fs in crossing.items()}
    order = {link: i for i, link in enumerate(crossing)}
    heap = [(left[link] / count[link], order[link], link) for link in crossing]
    heapq.heapify(heap)
    rates: dict[Flow, float] = {}
    while heap:
        level, _, link = heapq.heappop(heap)
        if count[link] == 0:
            continue
        now = max(0.0, left[link]) / count[link]
        if now > level * (1 + 1e-12) + 1e-15:  # stale: its share grew as others froze
            heapq.heappush(heap, (now, order[link], link))
            continue
        for f in crossing[link]:
            if f in rates:
                continue
            rates[f] = now
            for other in f.links:
                left[other] -= now
                count[other] -= 1
                if other is not link and count[other] > 0:
                    share = max(0.0, left[other]) / count[other]
                    heapq.heappush(heap, (share, order[other], other))
    return rates


def check(flows: Iterable[Flow], rates: Mapping[Flow, float]) -> list[str]:
    """The links an allocation puts over capacity (or a negative rate), as lines; [] when
    it is feasible."""
    load: dict[Link, float] = {}
    problems = []
    for f in flows:
        rate = rates.get(f, 0.0)
        if rate < 0 or not math.isfinite(rate):
            problems.append(f"a flow over {[x.name for x in f.links]} has rate {rate}")
        for link in f.links:
            load[link] = load.get(link, 0.0) + rate
    for link, used in load.items():
        if used > link.capacity * (1 + _SLACK):
            problems.append(f"{link.name}: {used:.6g} over its capacity {link.capacity:.6g}")
    return problems


@dataclass
class Network:
    strict: bool = False  # check every allocation (the tests; costs a pass over the flows)
    flows: list[Flow] = field(default_factory=list)
    delivered: float = 0.0  # units of flows that completed
    recomputed: int = 0
    _last: float = 0.0
    _dirty: bool = False
    _kick: trio.Event = field(default_factory=trio.Event)

    async def transfer(self, links: Sequence[Link], size: float) -> float:
        """Move `size` units over `links`; return when they arrived (the seconds it took).
        Raise LinkDown when one of the links is down now or fails meanwhile."""
        for link in links:
            if link.down:
                raise LinkDown(f"{link.name} is down")
        now = trio.current_time()
        if size <= 0:
            return 0.0
        self._advance(now)
        flow = Flow(tuple(links), size, size, now)
        self.flows.append(flow)
        self._changed()
        await flow.done.wait()
        if flow.failed is not None:
            raise LinkDown(flow.failed)
        return trio.current_time() - now

    def fail(self, link: Link) -> None:
        """Link `link` goes down: every flow crossing it ends with LinkDown."""
        self._advance(trio.current_time())
        link.down = True
        for f in [f for f in self.flows if link in f.links]:
            f.failed = f"{link.name} went down"
            self.flows.remove(f)
            f.done.set()
        self._changed()

    def _changed(self) -> None:
        self._dirty = True
        self._kick.set()

    def _advance(self, now: float) -> None:
        dt = now - self._last
        if dt > 0:
            for f in self.flows:
                moved = min(f.remaining, f.rate * dt)
                f.remaining -= moved
                for link in f.links:
                    link.carried += moved
        self._last = max(self._last, now)

    def _recompute(self) -> None:
        rates = max_min(self.flows)
        if self.strict:
            problems = check(self.flows, rates)
            if problems:
                raise AssertionError("; ".join(problems))
        for f in self.flows:
            f.rate = rates[f]
        self.recomputed += 1
        self._dirty = False

    async def run(self) -> None:
        """Advance the flows for ever (cancel it to stop): end those that arrived, give the
        others their rates, sleep until the next one ends or the flows change."""
        while True:
            now = trio.current_time()
            self._advance(now)
            arrived = [f for f in self.flows if f.remaining <= max(_DONE_UNITS, f.rate * _DONE_S)]
            for f in arrived:
                for link in f.links:  # what rounding left is delivered with it
                    link.carried += f.remaining
                self.delivered += f.size
                f.remaining = 0.0
                self.flows.remove(f)
                f.done.set()
            if arrived or self._dirty:
                self._recompute()
            ends = [now + f.remaining / f.rate for f in self.flows if f.rate > 0]
            self._kick = trio.Event()
            with trio.move_on_at(min(ends, default=math.inf)):
                await self._kick.wait()
