"""Which source each mirror is pushed to (which pusher key, so which forced command's source),
and why. Pure: the sources and their weights from syncd.toml, the record's past reports, and
what this run's reports say so far go in; decisions with their reasons come out.

The split: mirrors (in the plan's order) are dealt across the sources in proportion to their
shares, by the largest-remainder method (each source's count is within one of its exact
share), interleaved so that every prefix of the plan is split the same way. A share is the
configured ``weight``, or, once the record holds ``learn_after`` measured transfers from every
source, the learned capacity: the median bytes per second of one transfer from that source
times its ``max_transfers``. A source that failed in this run (a report shows the client's
attempt on it failing, and none since shows it working) hands its mirrors to the other source:
failover. Each decision carries the reason ``syncd runs show`` prints.

Tiers (`plan_tiers`): a hub is a mirror that runs an rsync daemon over the tree it serves;
mirrors whose admins list it in their client's ``HUBS`` may be pushed in a second wave that
pulls from the hub once the hub itself serves the release. The hubs join the split as
sources of their own (weight or learned rate, ``max_transfers``): of each hub's quota, the
eligible mirrors from the end of the plan (the fastest) go to it, the rest stay on their
source. A second-wave push
uses its source's key (the mirror's client falls back to that source when the hub fails), and
a hub that ends without the release hands its mirrors back to their sources.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

WEIGHT = "weight share"
LEARNED = "learned rate"
FAILOVER = "failover"
TIER = "second wave"


@dataclass(frozen=True)
class SourceSpec:
    """One source as syncd.toml's ``[[sources]]`` gives it (the key path stays in the shell)."""

    name: str
    weight: int = 1
    max_transfers: int = 50


@dataclass(frozen=True)
class Decision:
    source: str
    basis: str  # WEIGHT, LEARNED, FAILOVER or TIER
    reason: str  # one line for people
    # a second-wave push: `source` is a hub, pushed with the key of `key` (the mirror's
    # fallback, and where it goes should the hub fail); None: `source` is a source
    key: str | None = None

    @property
    def through(self) -> str:
        """The source whose pusher key this push logs in with."""
        return self.key or self.source


def measured_rates(reports: Iterable[Mapping[str, Any]]) -> dict[str, list[float]]:
    """Given clients' reports (raw JSON objects, as recorded), return source -> the bytes per
    second of each measured transfer: an ok report's ``bytes_transferred`` over the duration
    of its attempt on ``source_used``. Reports without those are skipped."""
    out: dict[str, list[float]] = {}
    for rep in reports:
        if not isinstance(rep, Mapping) or rep.get("status") != "ok":
            continue
        used, size = rep.get("source_used"), _positive(rep.get("bytes_transferred"))
        attempts = rep.get("attempts")
        if not isinstance(used, str) or size is None or not isinstance(attempts, list):
            continue
        durations = [
            _positive(a.get("duration_s"))
            for a in attempts
            if isinstance(a, Mapping) and a.get("source") == used and _worked(a)
        ]
        seconds = next((d for d in durations if d is not None), None)
        if seconds is not None:
            out.setdefault(used, []).append(size / seconds)
    return out


def _positive(value: object) -> float | None:
    """`value` as a float when it is a finite positive number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if 0 < number < float("inf") else None


def shares(
    sources: Sequence[SourceSpec], rates: Mapping[str, Sequence[float]], learn_after: int
) -> tuple[dict[str, float], str]:
    """Return source -> share and the basis (WEIGHT, or LEARNED when every source has at least
    `learn_after` measured transfers, each with a positive median)."""
    medians = {s.name: statistics.median(rates[s.name]) for s in sources if s.name in rates}
    learned = learn_after > 0 and all(
        len(rates.get(s.name, ())) >= learn_after and medians[s.name] > 0 for s in sources
    )
    if learned:
        return {s.name: medians[s.name] * s.max_transfers for s in sources}, LEARNED
    return {s.name: float(s.weight) for s in sources}, WEIGHT


def quotas(count: int, share: Mapping[str, float]) -> dict[str, int]:
    """Split `count` in proportion to `share` by the largest remainder (ties by name)."""
    total = sum(share.values())
    exact = {n: count * w / total for n, w in share.items()}
    out = {n: int(e) for n, e in exact.items()}
    left = count - sum(out.values())
    for name in sorted(exact, key=lambda n: (-(exact[n] - out[n]), n))[:left]:
        out[name] += 1
    return out


def assign(
    mirrors: Sequence[str],
    sources: Sequence[SourceSpec],
    rates: Mapping[str, Sequence[float]] = {},
    learn_after: int = 20,
) -> dict[str, Decision]:
    """Given the planned mirrors (in order), the sources and the measured rates, return mirror
    -> Decision. Every mirror gets exactly one source; the counts are `quotas`; each prefix of
    `mirrors` is split as evenly as the shares allow. Deterministic."""
    if not sources:
        raise ValueError("no source to assign")
    share, basis = shares(sources, rates, learn_after)
    quota = quotas(len(mirrors), share)
    total = sum(share.values())
    given = dict.fromkeys(quota, 0)
    order = [s.name for s in sources]
    out: dict[str, Decision] = {}
    for k, mirror in enumerate(mirrors, start=1):
        open_ = [n for n in order if given[n] < quota[n]]
        name = max(open_, key=lambda n: (share[n] * k / total - given[n], -order.index(n)))
        given[name] += 1
        out[mirror] = Decision(name, basis, _why(name, basis, share, rates, sources))
    return out


def plan_tiers(
    mirrors: Sequence[str],
    sources: Sequence[SourceSpec],
    hubs: Sequence[SourceSpec],
    eligible: Mapping[str, Sequence[str]],
    *,
    rates: Mapping[str, Sequence[float]] = {},
    learn_after: int = 20,
) -> dict[str, Decision]:
    """Given the planned mirrors (in order), the sources, the hubs planned in this run (each a
    mirror, with its weight and ``max_transfers``), which hubs each mirror may pull from
    (`eligible`: its client's HUBS) and the measured rates, return mirror -> Decision: every
    mirror's source as `assign` gives it, except that each hub takes, of its quota of all
    mirrors (the split over sources and hubs together), the eligible mirrors from the end of
    the plan (the plan is slowest first: the hub's own time delays only the fast ones).
    A hub itself, and a mirror none of whose hubs has room, stay on their source. Pure and
    deterministic; with no hub it is `assign`."""
    first = assign(mirrors, sources, rates, learn_after)
    names = {h.name for h in hubs} & set(mirrors)
    hubs = [h for h in hubs if h.name in names]
    if not hubs:
        return first
    share, basis = shares([*sources, *hubs], rates, learn_after)
    quota = quotas(len(mirrors), share)
    given = dict.fromkeys(names, 0)
    total = sum(share.values())
    out = dict(first)
    # the sources' own quota is the front of the plan (the slowest), never through a hub: a
    # hub whose quota is not full by then would otherwise take the slowest mirrors, whose own
    # pull, started late, would end the release (benchmarks/README.md, the simulation)
    hold = max(0, sum(quota[s.name] for s in sources) - len(names))
    front = set([m for m in mirrors if m not in names][:hold])
    # a second-wave mirror starts once its hub serves: the hubs take the mirrors pushed last
    # (the fastest by their last push) and the slowest start at once, from their source
    for mirror in reversed(mirrors):
        if mirror in front:
            continue
        open_ = [
            h
            for h in eligible.get(mirror, ())
            if h in given and h != mirror and mirror not in names
        ]
        open_ = [h for h in open_ if given[h] < quota[h]]
        if not open_:
            continue
        hub = max(open_, key=lambda h: ((quota[h] - given[h]) / quota[h], h))
        given[hub] += 1
        key = first[mirror].source
        out[mirror] = Decision(
            hub,
            TIER,
            f"{TIER}: via hub {hub} once it serves the release ({share[hub] / total:.0%} of "
            f"mirrors by {basis}; its pushes fall back to {key})",
            key,
        )
    return out


def _why(
    name: str,
    basis: str,
    share: Mapping[str, float],
    rates: Mapping[str, Sequence[float]],
    sources: Sequence[SourceSpec],
) -> str:
    total = sum(share.values())
    if basis == LEARNED:
        parts = ", ".join(
            f"{s.name} {statistics.median(rates[s.name]) / 1e6:.3g} MB/s x {s.max_transfers}"
            for s in sources
        )
        return f"{LEARNED}: {share[name] / total:.0%} of mirrors to {name} ({parts})"
    weights = ", ".join(f"{s.name}={s.weight}" for s in sources)
    return f"{WEIGHT}: {share[name] / total:.0%} of mirrors to {name} (weights {weights})"


def other(source: str, sources: Sequence[SourceSpec], avoid: Iterable[str] = ()) -> str | None:
    """The next source after `source` (in configured order, wrapping) not in `avoid`, or
    None when there is none."""
    names = [s.name for s in sources]
    if source not in names:
        return next((n for n in names if n not in set(avoid)), None)
    start = names.index(source)
    skip = set(avoid) | {source}
    for step in range(1, len(names)):
        candidate = names[(start + step) % len(names)]
        if candidate not in skip:
            return candidate
    return None


BUSY = "rsync_busy"  # the client's error kind for a daemon at its ``max connections``
_OK_EXITS = (0, 24)  # 24: files vanished on the source meanwhile, not a failure


def answered_busy(report: Mapping[str, Any] | None) -> bool:
    """Whether a client's report (raw) ends ``rsync_busy``: every source it tried was at its
    ``max connections``. A signal to come back later, never a mirror's failure."""
    error = report.get("error") if isinstance(report, Mapping) else None
    return isinstance(error, Mapping) and error.get("kind") == BUSY


def _worked(attempt: Mapping[str, Any]) -> bool:
    return attempt.get("exit_code") in _OK_EXITS and attempt.get("error") is None


def failed_sources(report: Mapping[str, Any] | None) -> tuple[set[str], set[str], set[str]]:
    """Given one client report (raw), return the sources its attempts show failing, those
    they show working, and those that answered busy (``rsync_busy``: a signal to send fewer
    transfers there, not a failure). Data that failed verification (exit 0 with an error)
    is a failure of its source."""
    failed: set[str] = set()
    worked: set[str] = set()
    busy: set[str] = set()
    if not isinstance(report, Mapping):
        return failed, worked, busy
    attempts = report.get("attempts")
    for a in attempts if isinstance(attempts, list) else ():
        if not isinstance(a, Mapping) or not isinstance(a.get("source"), str):
            continue
        error = a.get("error")
        if isinstance(error, str) and error.startswith(BUSY):
            busy.add(a["source"])
        else:
            (worked if _worked(a) else failed).add(a["source"])
    return failed - worked, worked, busy - worked - failed


@dataclass
class SourceBoard:
    """What this run has learnt of its sources (and hubs): which are failing now, and why.
    Feed it every report (`observe`), ask it where a mirror goes now (`route`, `retry_on`)."""

    sources: Sequence[SourceSpec]
    hubs: Sequence[SourceSpec] = ()
    failing: dict[str, str] = field(default_factory=dict)  # source -> how it was seen failing
    capacity: dict[str, int] = field(default_factory=dict)  # transfers at once, now
    _served: dict[str, int] = field(default_factory=dict)  # since the capacity last grew

    def __post_init__(self) -> None:
        for s in (*self.sources, *self.hubs):
            self.capacity.setdefault(s.name, s.max_transfers)

    def hub_gone(self, hub: str, why: str) -> None:
        """Hub `hub` ended without serving the release (`why`, e.g. "ended failed: ..."):
        its mirrors go to their sources."""
        self.failing.setdefault(hub, why)

    def observe(
        self, mirror: str, report: Mapping[str, Any] | None, in_flight: Mapping[str, int] = {}
    ) -> None:
        """Learn from `mirror`'s report, pushed while `in_flight` transfers (this one too) were
        running per source. A busy answer halves what was in flight there as the source's
        capacity (never under 1); each `capacity` transfers it serves since add one slot
        back, up to its ``max_transfers`` (TCP's additive increase, multiplicative
        decrease). Only configured
        sources count: a report naming others (a hostile or confused mirror) leaves the
        board as it was."""
        everyone = (*self.sources, *self.hubs)
        known = {s.name for s in everyone}
        failed, worked, busy = (names & known for names in failed_sources(report))
        most = {s.name: s.max_transfers for s in everyone}
        for name in worked:
            self.failing.pop(name, None)
            self._served[name] = self._served.get(name, 0) + 1
            if self._served[name] >= self.capacity[name]:
                self.capacity[name] = min(most[name], self.capacity[name] + 1)
                self._served[name] = 0
        for name in failed:
            self.failing.setdefault(name, f"failed for {mirror} in this run")
        for name in busy:
            self.capacity[name] = max(1, min(self.capacity[name], in_flight.get(name, 1) // 2))
            self._served[name] = 0

    def route(self, planned: Decision) -> Decision:
        """Where a mirror planned for `planned.source` goes now: there, unless that source is
        failing and another is not (failover); a second-wave mirror whose hub is failing goes
        to its source."""
        if planned.key is not None:
            if planned.source not in self.failing:
                return planned
            back = Decision(
                planned.key,
                FAILOVER,
                f"{FAILOVER}: hub {planned.source} {self.failing[planned.source]}, so "
                f"{planned.key} (its source)",
            )
            return self.route(back) if planned.key in self.failing else back
        if planned.source not in self.failing:
            return planned
        target = other(planned.source, self.sources, avoid=self.failing)
        if target is None:
            return planned
        return Decision(
            target,
            FAILOVER,
            f"{FAILOVER}: {planned.source} {self.failing[planned.source]}, so {target} "
            f"(planned by {planned.basis})",
        )

    def retry_on(
        self, mirror: str, current: Decision, report: Mapping[str, Any] | None
    ) -> Decision:
        """Where the next attempt of `mirror` goes after a failed one on `current.source`:
        the other source when its report shows `current.source` failing, else the same."""
        failed, _, _ = failed_sources(report)
        if current.source not in failed:  # it worked, or was busy: the same source, later
            return self.route(current)
        if current.key is not None:  # its hub failed it: its source, as its client did
            return self.route(
                Decision(
                    current.key,
                    FAILOVER,
                    f"{FAILOVER}: hub {current.source} failed "
                    f"for {mirror}, so {current.key} (its source)",
                )
            )
        target = other(current.source, self.sources, avoid=set(self.failing) - {current.source})
        if target is None:
            return current
        return Decision(
            target, FAILOVER, f"{FAILOVER}: {current.source} failed for {mirror}, so {target}"
        )
