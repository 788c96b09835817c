"""The release gate: announce a release in the TXT record only once enough mirrors serve it.

Pure: per mirror what the publish record and the HTTP check say, the release, the policy; out
comes the verdict, the mirrors in rotation, and the laggards that held the gate back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class MirrorEvidence:
    name: str
    country: str
    active: bool
    reported: Mapping[str, int] | None  # versions in the last ok publish report
    served: Mapping[str, int] | None  # versions the last good HTTP check saw
    fresh: bool  # the monitor's verdict (True when never checked)


@dataclass(frozen=True)
class GateVerdict:
    reached: bool
    share: float
    serving: tuple[str, ...]
    laggards: tuple[str, ...]
    empty_countries: tuple[str, ...]
    reason: str


def carries(versions: Mapping[str, int] | None, release: Mapping[str, int]) -> bool:
    """Whether `versions` holds every database of `release` at its version or newer."""
    return versions is not None and all(versions.get(db, -1) >= v for db, v in release.items())


def serves_release(m: MirrorEvidence, release: Mapping[str, int]) -> bool:
    """Verified both ways: the client reported it and an HTTP check saw it served."""
    return m.active and m.fresh and carries(m.reported, release) and carries(m.served, release)


def judge(
    mirrors: Sequence[MirrorEvidence], release: Mapping[str, int], share: float
) -> GateVerdict:
    active = [m for m in mirrors if m.active]
    serving = [m for m in active if serves_release(m, release)]
    laggards = tuple(sorted(m.name for m in active if m not in serving))
    got = len(serving) / len(active) if active else 0.0
    countries = {m.country for m in active}
    empty = tuple(sorted(countries - {m.country for m in serving}))
    if not active:
        return GateVerdict(False, 0.0, (), (), (), "no active mirror")
    if got < share:
        reason = (
            f"{len(serving)} of {len(active)} mirrors serve the release ({got:.0%} < {share:.0%})"
        )
    elif empty:
        reason = f"no mirror serves the release yet in {', '.join(empty)}"
    else:
        reason = f"{len(serving)} of {len(active)} mirrors serve the release ({got:.0%})"
    return GateVerdict(
        got >= share and not empty,
        got,
        tuple(sorted(m.name for m in serving)),
        laggards,
        empty,
        reason,
    )
