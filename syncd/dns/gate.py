"""The release gate: announce a release in the TXT record only once enough mirrors serve it.

Pure: per mirror what the publish record and the HTTP check say, the release, the policy; out
comes the verdict, the mirrors in rotation, and the laggards that held the gate back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from syncd.inventory.model import Inventory, Mirror
from syncd.monitor.freshness import Check, Record, State, keeps_rotation
from syncd.publish.outcome import MirrorPushState
from syncd.text import internal_error


@dataclass(frozen=True)
class MirrorEvidence:
    name: str
    country: str
    active: bool
    reported: Mapping[str, int] | None  # versions in the last ok publish report
    served: Mapping[str, int] | None  # versions the last good HTTP check saw
    fresh: bool  # the monitor's verdict (True when never checked)
    maintenance: str | None = None  # a maintenance window in effect: why it is out


@dataclass(frozen=True)
class GateVerdict:
    reached: bool
    share: float
    serving: tuple[str, ...]
    laggards: tuple[str, ...]
    empty_countries: tuple[str, ...]
    reason: str
    required: float  # the share it was judged against ([dns] gate_share)


def gate_json(verdict: GateVerdict) -> dict[str, Any]:
    """The one JSON form of a verdict: `gate` in status.json (docs/status.schema.json), in
    ``syncd dns --json`` and in ``dns`` of ``syncd publish --json``."""
    return {
        "open": verdict.reached,
        "share": round(verdict.share, 4),
        "required_share": verdict.required,
        "reason": verdict.reason,
        "held_back_by": list(verdict.laggards),
    }


class ServedBy(StrEnum):
    """Where the evidence that a mirror serves what it serves comes from."""

    CHECK = "the monitor's newest good check"
    PROOF = "the publish's HTTP proof"
    NOTHING = "no evidence"


# What counts as served, first row that holds wins: (the newest good check is at least as new
# as the last push (or there was no push), the last push is ok, publish proves over HTTP).
# None: does not matter.
SERVED: Sequence[tuple[bool | None, bool | None, bool | None, ServedBy]] = (
    (True, None, None, ServedBy.CHECK),
    (None, True, True, ServedBy.PROOF),  # publish proved it over HTTP before calling it ok
    (None, None, None, ServedBy.NOTHING),
)


def served_by(check_is_newer: bool, push_ok: bool, http_proof: bool) -> ServedBy:
    """Given the facts, return the row of `SERVED` that decides."""
    facts = (check_is_newer, push_ok, http_proof)
    for *row, source in SERVED:
        if all(want is None or want == got for want, got in zip(row, facts, strict=True)):
            return source
    return ServedBy.NOTHING


def evidence(
    name: str,
    country: str,
    *,
    live: bool,
    push: MirrorPushState | None,
    latest_check: Check | None,
    states: Sequence[State],
    http_proof: bool,
    maintenance: str | None = None,
) -> MirrorEvidence:
    """Given what the publish record (`push`) and the monitor (its newest good check and its
    states per family) say of a mirror, return the gate's evidence. `http_proof`: publish
    proves over HTTP before it calls a mirror ok (it has a URL, and [policy] http_check)."""
    reported = push.versions if push is not None and push.outcome == "ok" else None
    newer = latest_check is not None and (push is None or latest_check.at >= push.at)
    source = served_by(newer, reported is not None, http_proof)
    served = {
        # a check that found part of the release not served whole (the current cdiff...)
        # does not count as serving it
        ServedBy.CHECK: dict(latest_check.versions or {})
        if latest_check and not latest_check.incomplete
        else None,
        ServedBy.PROOF: reported,
        ServedBy.NOTHING: None,
    }[source]
    fresh = all(keeps_rotation(s) for s in states)
    return MirrorEvidence(name, country, live, reported, served, fresh, maintenance)


def carries(versions: Mapping[str, int] | None, release: Mapping[str, int]) -> bool:
    """Whether `versions` holds every database of `release` at its version or newer."""
    return versions is not None and all(versions.get(db, -1) >= v for db, v in release.items())


def serves_release(m: MirrorEvidence, release: Mapping[str, int]) -> bool:
    """Verified both ways: the client reported it and an HTTP check saw it served; and no
    maintenance window is in effect."""
    return (
        m.active
        and m.fresh
        and m.maintenance is None
        and carries(m.reported, release)
        and carries(m.served, release)
    )


def judge(
    mirrors: Sequence[MirrorEvidence], release: Mapping[str, int], share: float
) -> GateVerdict:
    # a mirror in maintenance neither serves nor holds the gate back: it was announced
    active = [m for m in mirrors if m.active and m.maintenance is None]
    serving = [m for m in active if serves_release(m, release)]
    laggards = tuple(sorted(m.name for m in active if m not in serving))
    got = len(serving) / len(active) if active else 0.0
    countries = {m.country for m in active}
    empty = tuple(sorted(countries - {m.country for m in serving}))
    if not active:
        return GateVerdict(False, 0.0, (), (), (), "no active mirror", share)
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
        share,
    )


@dataclass(frozen=True)
class Gathered:
    """Each mirror's evidence, in the inventory's order, and why a mirror's own evidence could
    not be judged (it then counts as serving nothing)."""

    mirrors: list[MirrorEvidence]
    broken: dict[str, str]


@dataclass(frozen=True)
class Recorded:
    """What the record holds of the mirrors as the gate judges them, read once: each mirror's
    last push, its freshness per (mirror, family), its newest check that saw versions, and
    the maintenance windows in effect (with why). A monitor pass has all of it in its
    snapshot; ``syncd dns`` and the publish's gate read it (`syncd.dns.evidence`)."""

    published: Mapping[str, MirrorPushState]
    records: Mapping[tuple[str, str], Record]
    latest_good: Mapping[str, Check | None]
    maintenance: Mapping[str, str]


def judge_recorded(inv: Inventory, recorded: Recorded, *, http_check: bool) -> Gathered:
    """`judge_mirrors` over what `recorded` holds."""
    return judge_mirrors(
        inv,
        recorded.published,
        recorded.records,
        recorded.latest_good,
        http_check=http_check,
        maintenance=recorded.maintenance,
    )


def live(m: Mirror) -> bool:
    """In the gate and the rotation: enabled and past its first publish (not pending)."""
    return m.active and not m.pending


def judge_mirrors(
    inv: Inventory,
    published: Mapping[str, MirrorPushState],
    records: Mapping[tuple[str, str], Record],
    latest_good: Mapping[str, Check | None],
    *,
    http_check: bool,
    maintenance: Mapping[str, str] | None = None,
) -> Gathered:
    """The one place the gate's evidence is built, for every caller (``syncd dns``, the
    publish's gate, the monitor's rotation, the page and the metrics): given what the record
    holds (each mirror's last push, its freshness per family, its newest check that saw
    versions), judge each mirror of `inv`; whatever goes wrong with one mirror's evidence is
    that mirror's (kept out, said in `broken`), never the others'. `http_check` ([policy]):
    publish proves over HTTP before it calls a mirror ok. `maintenance`: the mirrors whose
    maintenance window is in effect (`syncd.monitor.maintenance`), with why: out of the
    rotation, and out of the gate's count."""
    out, broken = [], {}
    for m in inv.mirrors:
        try:
            out.append(
                evidence(
                    m.name,
                    m.country,
                    live=live(m),
                    push=published.get(m.name),
                    latest_check=latest_good.get(m.name),
                    states=[r.state for (name, _), r in records.items() if name == m.name],
                    http_proof=bool(m.http) and http_check,
                    maintenance=(maintenance or {}).get(m.name),
                )
            )
        except Exception as err:
            out.append(MirrorEvidence(m.name, m.country, live(m), None, None, False))
            broken[m.name] = internal_error(err)
    return Gathered(out, broken)
