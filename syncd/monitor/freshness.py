"""Freshness policy: given a mirror's record, one check and `now`, its next state.

States, in increasing severity:

- ``unknown``: not checked yet. The first check sets the state it finds at once (no
  hysteresis, nothing to recover from), and that first transition is never a change out of
  ``fresh``.
- ``fresh``: serves the current release, timestamp recent.
- ``lagging``: serves an older release than the current one, or not all of it (the current
  ``daily-N.cdiff`` or a ``.sign`` file missing or not whole), for longer than a grace period.
- ``old``: its timestamp is over a day old (the admin is warned).
- ``unreachable``: the last N checks failed (no answer, redirect, garbage).
- ``removed``: its timestamp is two days old (out of DNS rotation until fresh again).

A worse state is entered at once. A better one needs consecutive good checks (hysteresis), so a
flapping mirror does not mail every hour; the way back to ``fresh`` is announced as recovered.
Pure: no clock, no I/O. Defaults follow the old mirror guide (a day old: warn; two days: remove).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from syncd.text import clean


class State(StrEnum):
    UNKNOWN = "unknown"
    FRESH = "fresh"
    LAGGING = "lagging"
    OLD = "old"
    UNREACHABLE = "unreachable"
    REMOVED = "removed"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {
    State.UNKNOWN: -1,
    State.FRESH: 0,
    State.LAGGING: 1,
    State.OLD: 2,
    State.UNREACHABLE: 3,
    State.REMOVED: 4,
}


@dataclass(frozen=True)
class Thresholds:
    lagging_grace_s: float = 3 * 3600.0
    old_after_s: float = 86_400.0
    removed_after_s: float = 2 * 86_400.0
    unreachable_after: int = 3  # consecutive failed checks
    recover_after: int = 2  # consecutive good checks before a better state is entered


@dataclass(frozen=True)
class Release:
    """What "current" means: the versions the source tree holds, and when they appeared."""

    versions: Mapping[str, int]
    released_at: float


@dataclass(frozen=True)
class Check:
    """One check of one mirror (one address family)."""

    at: float
    ok: bool
    timestamp: float | None = None  # the mirror's served ``timestamp`` file (unix time)
    versions: Mapping[str, int] | None = None  # served CVD versions
    error: str | None = None  # cleaned (`syncd.text.clean`): it quotes what a mirror sent
    incomplete: tuple[str, ...] = ()  # release files (current cdiff, .sign) not served whole

    def __post_init__(self) -> None:
        if self.error is not None:
            object.__setattr__(self, "error", clean(self.error))
        if self.incomplete:
            object.__setattr__(self, "incomplete", tuple(clean(i, 300) for i in self.incomplete))


@dataclass(frozen=True)
class Record:
    """A mirror's freshness between checks (what the store keeps)."""

    state: State = State.UNKNOWN
    since: float = 0.0  # when `state` was entered; meaningless while unknown
    good_streak: int = 0  # consecutive checks pointing to a better state than `state`
    failed_streak: int = 0


@dataclass(frozen=True)
class Transition:
    old: State
    new: State
    at: float
    reason: str  # cleaned, as a check's error

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", clean(self.reason))

    @property
    def first(self) -> bool:
        """The mirror's first judgement (from ``unknown``): not a change of anything it was."""
        return self.old is State.UNKNOWN

    @property
    def recovered(self) -> bool:
        return self.new is State.FRESH and not self.first and self.old is not State.FRESH

    @property
    def label(self) -> str:
        return "recovered" if self.recovered else self.new.value


def behind(served: Mapping[str, int] | None, release: Release) -> list[str]:
    """Return the databases `served` holds at an older version than `release` (or not at all)."""
    served = served or {}
    return sorted(db for db, v in release.versions.items() if served.get(db, -1) < v)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def _target(check: Check, release: Release, th: Thresholds) -> tuple[State, str]:
    """Return the state this one good check points to, and why."""
    assert check.timestamp is not None
    age = check.at - check.timestamp
    late = behind(check.versions, release)
    if age >= th.removed_after_s:
        return State.REMOVED, f"timestamp is {_hours(age)} old (limit {_hours(th.removed_after_s)})"
    if age >= th.old_after_s:
        return State.OLD, f"timestamp is {_hours(age)} old (limit {_hours(th.old_after_s)})"
    waited = check.at - release.released_at
    if late and waited >= th.lagging_grace_s:
        served = ", ".join(f"{db} {(check.versions or {}).get(db, 'missing')}" for db in late)
        current = ", ".join(f"{db} {release.versions[db]}" for db in late)
        why = f"serves {served} instead of {current}, {_hours(waited)} after the release"
        return State.LAGGING, why
    if check.incomplete and waited >= th.lagging_grace_s:
        why = f"{check.incomplete[0]}, {_hours(waited)} after the release"
        if len(check.incomplete) > 1:
            why += f" (and {len(check.incomplete) - 1} more)"
        return State.LAGGING, why
    return State.FRESH, "serves the current release"


def step(
    rec: Record, check: Check, release: Release, th: Thresholds = Thresholds()
) -> tuple[Record, Transition | None]:
    """Given a mirror's record and a new check, return its next record and any transition."""
    if not check.ok or check.timestamp is None:
        failed = rec.failed_streak + 1
        reason = f"{failed} failed checks in a row: {check.error or 'no timestamp served'}"
        if failed >= th.unreachable_after and rec.state.severity < State.UNREACHABLE.severity:
            new = Record(State.UNREACHABLE, check.at, 0, failed)
            return new, Transition(rec.state, State.UNREACHABLE, check.at, reason)
        return replace(rec, failed_streak=failed, good_streak=0), None
    target, reason = _target(check, release, th)
    if rec.state is State.UNKNOWN:
        first = Transition(State.UNKNOWN, target, check.at, f"first check: {reason}")
        return Record(target, check.at, 0, 0), first
    return _towards(replace(rec, failed_streak=0), target, reason, check.at, th)


def _towards(
    rec: Record, target: State, reason: str, at: float, th: Thresholds
) -> tuple[Record, Transition | None]:
    """One good check pointing to `target`: worse at once, better after a streak."""
    if target.severity > rec.state.severity:
        return Record(target, at, 0, 0), Transition(rec.state, target, at, reason)
    if target.severity == rec.state.severity:
        return replace(rec, good_streak=0), None
    streak = rec.good_streak + 1
    if streak < th.recover_after:
        return replace(rec, good_streak=streak), None
    if target is State.FRESH:
        reason = f"{reason} again ({streak} good checks in a row)"
    return Record(target, at, 0, 0), Transition(rec.state, target, at, reason)


def keeps_rotation(state: State) -> bool:
    """Whether the monitor lets a mirror stay in DNS rotation: judged fresh, or not judged yet
    (then the publish record's HTTP proof decides alone)."""
    return state in (State.FRESH, State.UNKNOWN)


@dataclass(frozen=True)
class Figures:
    """archweb-style figures over a window: completion, delay and a score that orders mirrors."""

    checks: int
    completion: float  # good checks / checks, 0..1
    mean_delay_s: float | None
    stddev_delay_s: float | None
    score: float | None  # lower is better; None without a good check


def figures(checks: Sequence[Check], since: float) -> Figures:
    """Return the figures for `checks` made at or after `since`.

    Delay is how far the served timestamp lags the check. The score follows archweb:
    (mean delay + deviation, in hours) / completion, so a mirror that is often unreachable
    ranks below a steady one of the same delay.
    """
    window = [c for c in checks if c.at >= since]
    if not window:
        return Figures(0, 0.0, None, None, None)
    delays = [c.at - c.timestamp for c in window if c.ok and c.timestamp is not None]
    completion = len(delays) / len(window)
    if not delays:
        return Figures(len(window), 0.0, None, None, None)
    mean = sum(delays) / len(delays)
    stddev = math.sqrt(sum((d - mean) ** 2 for d in delays) / len(delays))
    score = (mean + stddev) / 3600 / completion
    return Figures(len(window), completion, mean, stddev, score)


def worst(states: Sequence[Record]) -> Record:
    """The record of the worst family: a mirror is as good as its worst address family."""
    return max(states, key=lambda r: r.state.severity)
