"""The checks of a monitor pass: every enabled mirror asked over HTTP as freshclam would
(bounded, each mirror its own failure boundary), and the freshness policy applied to what was
seen. The pass itself (the record, the mail, DNS, the page) is `syncd.monitor.run`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from syncd.httpcheck.client import (
    CheckFailed,
    Target,
    check,
    maintenance_notice,
    new_client,
    targets,
)
from syncd.httpcheck.conditional import Proven
from syncd.monitor.freshness import Check, Record, Release, Thresholds, Transition, step
from syncd.monitor.maintenance import HTTP, Sighting, http_sighting
from syncd.release.manifest import CvdTail, ReleaseFile
from syncd.text import internal_error

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class MonitorTarget:
    name: str
    http: str
    country: str


@dataclass(frozen=True)
class Observation:
    mirror: str
    family: str
    check: Check
    notice: Sighting | None = None  # what its /local_maintenance said (None: no answer)
    proven: tuple[Proven, ...] | None = None  # what the check proved; None: it failed


@dataclass(frozen=True)
class CheckResult:
    mirror: str
    family: str
    check: Check
    record: Record
    transition: Transition | None


async def observe(
    mirrors: Sequence[MonitorTarget],
    databases: Sequence[str],
    *,
    concurrency: int = 50,
    timeout_s: float = 10.0,
    deadline_s: float = 120.0,
    clock: Callable[[], float] = time.time,
    files: Sequence[ReleaseFile] = (),
    tails: Sequence[CvdTail] = (),
    known: Mapping[tuple[str, str], Mapping[str, Proven]] | None = None,
) -> list[Observation]:
    """Check every mirror on each address family (each check within its own deadline: see
    syncd.httpcheck.client.check); a mirror that fails gives a failed check. With `known`
    (what passes before proved, by mirror and family) the release files and CVD tails proven
    before are asked again conditionally (syncd.httpcheck.conditional); each observation
    carries what its check proved. Each mirror's task is its failure boundary: whatever it
    raises that no adapter translated is that mirror's failed check (its families not checked
    yet with it), never the pass's."""
    limiter = trio.CapacityLimiter(concurrency)
    found: list[Observation] = []

    async def one(m: MonitorTarget, client: httpx.AsyncClient) -> None:
        seen: list[Observation] = []
        try:
            await _observe_one(m, client, seen)
        except Exception as err:  # one mirror's fault stays that mirror's failure
            seen.append(Observation(m.name, "any", Check(clock(), False, error=unexpected(err))))
        found.extend(seen)

    async def _observe_one(
        m: MonitorTarget, client: httpx.AsyncClient, seen: list[Observation]
    ) -> None:
        async with limiter:
            try:
                with trio.fail_after(deadline_s):
                    fams = await targets(m.http, f"db.{m.country.lower()}.clamav.net")
            except (CheckFailed, trio.TooSlowError) as err:
                seen.append(Observation(m.name, "any", Check(clock(), False, error=str(err))))
                return
        notice = None
        for target in fams:
            async with limiter:
                at = clock()
                if notice is None:  # read on one family: the first that answers
                    notice = await _notice(client, target, at)
                proven = None
                mine = None if known is None else known.get((m.name, target.family), {})
                try:
                    served = await check(client, target, databases, files, tails, known=mine)
                    c = Check(at, True, served.timestamp, served.versions, None, served.incomplete)
                    proven = served.proven
                except CheckFailed as err:
                    c = Check(at, False, error=str(err))  # cleaned as every check's error is
                except trio.TooSlowError:
                    c = Check(at, False, error="the whole check took too long")
                seen.append(Observation(m.name, target.family, c, notice, proven))

    with trio.move_on_after(deadline_s):
        async with new_client(timeout_s, concurrency) as client, trio.open_nursery() as nursery:
            for m in mirrors:
                nursery.start_soon(one, m, client)
    seen = {o.mirror for o in found}
    at = clock()
    for m in mirrors:
        if m.name not in seen:
            found.append(Observation(m.name, "any", Check(at, False, error="monitor run deadline")))
    return sorted(found, key=lambda o: (o.mirror, o.family))


async def _notice(client: httpx.AsyncClient, target: Target, at: float) -> Sighting | None:
    """What the mirror's /local_maintenance says (None: nothing heard). Whatever goes wrong
    reading it is no notice, never a failed check: the notice is the admin's word, not what
    freshclam needs."""
    try:
        answer = await maintenance_notice(client, target)
    except Exception as err:
        return Sighting(HTTP, at, None, unexpected(err))
    return None if answer is None else http_sighting(*answer, at)


def unexpected(err: BaseException) -> str:
    """The reason recorded for a mirror whose check raised what no adapter translated."""
    return internal_error(err)


def apply_policy(
    observations: Sequence[Observation],
    records: Mapping[tuple[str, str], Record],
    release: Release,
    thresholds: Thresholds,
) -> list[CheckResult]:
    """Step each (mirror, family) record with its new check. A step that raises (a bug, a
    record no step can read) judges that mirror on a failed check saying so, the others as
    they are."""
    outcomes = []
    for o in observations:
        before = records.get((o.mirror, o.family), Record())
        check = o.check
        try:
            rec, transition = step(before, check, release, thresholds)
        except Exception as err:
            check = Check(check.at, False, error=unexpected(err))
            rec, transition = step(before, check, release, thresholds)
        outcomes.append(CheckResult(o.mirror, o.family, check, rec, transition))
    return outcomes


@dataclass(frozen=True)
class MirrorFacts:
    """What the monitor needs of an inventory entry to judge and announce."""

    name: str
    http: str
    country: str
    admins: tuple[str, ...]
    notify: tuple[str, ...]
