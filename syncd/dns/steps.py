"""A DNS update as a sequence of steps that keeps the promise DNS makes to every client.

The promise (the invariant): at every moment, in every view, every A/AAAA set that a resolver
may legally hold (fetched from any authoritative server, kept for its TTL) lists only mirrors
that serve every version the TXT record announces. Pure: what the server holds and what it
should hold in, the steps and their timing out; the shell (``syncd.dns.update``)
sends, waits and records.

The steps, in this order; a failed step ends the sequence and the TXT stays where it was:

====  ========  ===========================================================================
 #    step      what it does, and when it counts as done
====  ========  ===========================================================================
 a    shrink    every pool in every view loses the mirrors that do not serve what the TXT
                will announce (eligible mirrors are added in the same updates); done when
                every update was accepted
 b    settle    every authoritative server (the primary and each secondary) serves a serial
                at least the primary's after (a); done when each does, within the bound
 c    announce  only when the gate is open and (a) and (b) succeeded: wait until every
                removal's TTL has passed since it was settled (this run's and earlier ones'),
                then move the TXT
====  ========  ===========================================================================

"What the TXT will announce" is the release when the gate is open, and otherwise what the TXT
announces now: a mirror that still serves the announced release stays in rotation while the
fleet catches up with a new one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from syncd.dns.plan import Change


class Step(StrEnum):
    SHRINK = "shrink"
    SETTLE = "settle"
    ANNOUNCE = "announce"


STEPS = (Step.SHRINK, Step.SETTLE, Step.ANNOUNCE)


@dataclass(frozen=True)
class HeldSet:
    """What the server holds for one name and type: the rdata texts and their TTL."""

    values: tuple[str, ...]
    ttl: int = 0


@dataclass(frozen=True)
class Removal:
    """A pool's records taken out: when every server served the change, and the TTL the
    removed records had (how long a resolver may still hand them out after that)."""

    settled_at: float
    ttl: int


@dataclass(frozen=True)
class StepResult:
    step: Step
    ok: bool
    detail: str
    at: float


def pool_changes(
    desired: Mapping[tuple[str, str], Sequence[str]],
    held: Mapping[tuple[str, str], HeldSet],
    *,
    ttl: int,
    reason: str = "",
    view: str | None = None,
) -> list[Change]:
    """Return the changes that turn `held` into `desired`, each added record at `ttl` and each
    change carrying the TTL the server held (what a resolver may keep a removed record for)."""
    changes = []
    for key in sorted(desired):
        want = set(desired[key])
        have = held.get(key, HeldSet(()))
        if want != set(have.values):
            changes.append(
                Change(
                    key[0],
                    key[1],
                    tuple(sorted(want - set(have.values))),
                    tuple(sorted(set(have.values) - want)),
                    reason,
                    view,
                    ttl=ttl,
                    held_ttl=have.ttl,
                )
            )
    return changes


def removes(changes: Iterable[Change]) -> bool:
    """Whether any of `changes` takes an address out of a pool."""
    return any(c.remove and c.rdtype in ("A", "AAAA") for c in changes)


def announce_not_before(removals: Iterable[Removal]) -> float:
    """The earliest time the TXT may move: every removal's TTL passed since it settled (0.0
    when nothing was removed)."""
    return max((r.settled_at + r.ttl for r in removals), default=0.0)


def target_versions(
    release: Mapping[str, int], announced: Mapping[str, int] | None, *, gate_open: bool
) -> dict[str, int]:
    """What the pools must serve: the release once the gate is open (the TXT is about to move
    to it), else what the TXT announces now (the release when there is no record yet)."""
    if gate_open or announced is None:
        return dict(release)
    return dict(announced)


def serial_newer(a: int, b: int) -> bool:
    """Whether SOA serial `a` is at least `b` in serial number arithmetic (RFC 1982)."""
    return a == b or 0 < ((a - b) % 2**32) < 2**31


def explain_wait(
    gate_at: float,
    announced_at: float,
    not_before: float,
    pool_ttl: int,
    held_ttl: int,
    *,
    daily: int,
) -> str:
    """Why TXT `daily` moved when it did, for the summary: the delay after the gate opened and
    the TTL that decided it ("TXT 28035 announced 61 s after the gate opened: the pools' TTL
    is 60 s")."""
    what = f"TXT {daily} announced {announced_at - gate_at:.0f} s after the gate opened"
    if not_before <= gate_at:
        return f"{what} (no removal to wait out)"
    if held_ttl == pool_ttl:
        return f"{what}: the pools' TTL is {pool_ttl} s"
    return (
        f"{what}: the removed records' TTL is {held_ttl} s "
        f"([dns] pool_ttl is {pool_ttl} s: records added from now on)"
    )


def failed_step(results: Sequence[StepResult]) -> StepResult | None:
    """The step that ended the sequence, or None when none failed."""
    return next((r for r in results if not r.ok), None)


def with_reason(changes: Iterable[Change], reason: str) -> list[Change]:
    return [replace(c, reason=reason) for c in changes]
