"""Prometheus metrics for node_exporter's textfile collector: what to alert on.

Every state series is present, 0 or 1, for every state a mirror can be in (not only its
current one), so an alert on ``== 1`` never meets a missing series and a dashboard can sum
them. Beside the mirrors' freshness, per address family: the current release per database,
the release gate, and the last publish and heartbeat runs (when, how long, outcomes by class).
Pure: a :class:`MetricsSnapshot` in, text in the exposition format out; every label value from
a mirror or an operator is escaped. ``deploy/prometheus/`` holds alert rules over these names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from syncd.dns.gate import GateVerdict
from syncd.monitor.certs import STATES as CERT_STATES
from syncd.monitor.certs import CertStatus
from syncd.monitor.freshness import State
from syncd.publish.outcome import PushOutcome
from syncd.release.propagation import QUANTILES, Propagation, Quantiles
from syncd.statuspage.rows import MirrorStatus
from syncd.statuspage.traffic import TrafficView, metric_families
from syncd.text import clean

# a mirror's overall state: its worst family's, or why it is not checked
MIRROR_STATES: tuple[str, ...] = (*(s.value for s in State), "unchecked", "disabled", "pending")
FAMILY_STATES: tuple[str, ...] = tuple(s.value for s in State)
RUN_KINDS: tuple[str, ...] = ("release", "heartbeat")
RUN_STATES: tuple[str, ...] = ("running", "finished", "cancelled")
# a mirror's outcome in a run; "none": the run ended (or stopped) before it had one
RUN_OUTCOMES: tuple[str, ...] = (*(o.value for o in PushOutcome), "none")


@dataclass(frozen=True)
class RunFacts:
    """One publish run as the record holds it: its kind, state, times, and how many mirrors
    ended with each outcome."""

    kind: str  # "release" or "heartbeat"
    state: str  # "running", "finished", "cancelled"
    started_at: float
    finished_at: float | None
    outcomes: Mapping[str, int]  # outcome -> mirrors

    @property
    def all_ok(self) -> bool:
        return self.state == "finished" and set(self.outcomes) <= {"ok"} and bool(self.outcomes)


@dataclass(frozen=True)
class MetricsSnapshot:
    now: float
    release: Mapping[str, int]
    mirrors: Sequence[MirrorStatus]
    families: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (mirror, family)
    runs: Sequence[RunFacts] = ()  # any order; the newest of each kind counts
    gate: GateVerdict | None = None
    suspect: bool = False  # the monitor suspects its own checks (syncd.monitor.outage)
    release_propagation: Propagation | None = None  # the newest release's
    t90_limit_s: float | None = None  # [releases] t90_limit_h, in seconds
    certs: Mapping[str, CertStatus] = field(default_factory=dict)  # mirror -> https cert
    traffic: Mapping[str, TrafficView] = field(default_factory=dict)  # mirror -> reported
    traffic_countries: Mapping[str, TrafficView] = field(default_factory=dict)
    local_stats: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # (verdict, detail)


_LABEL_ESCAPE = re.compile(r'[\\"\n]')


def label(value: str) -> str:
    """Clean a label value (`syncd.text.clean`: one line, no controls, format characters
    or surrogates; cut at 200 characters) and escape it for the text format (backslash,
    double quote)."""
    return _LABEL_ESCAPE.sub(
        lambda m: {"\\": "\\\\", '"': '\\"', "\n": "\\n"}[m.group(0)], clean(value, 200)
    )


def _labels(pairs: Mapping[str, str]) -> str:
    return "{" + ",".join(f'{k}="{label(v)}"' for k, v in pairs.items()) + "}" if pairs else ""


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(
        self,
        name: str,
        help_text: str,
        samples: Iterable[tuple[Mapping[str, str], float]],
        kind: str = "gauge",
        tail: Iterable[tuple[str, float]] = (),
    ) -> None:
        """A metric family: its samples, then `tail`'s (suffix, value): a summary's
        ``_sum`` and ``_count``."""
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        self.lines += [f"{name}{_labels(lbl)} {_number(v)}" for lbl, v in samples]
        self.lines += [f"{name}{suffix} {_number(v)}" for suffix, v in tail]


def _newest(runs: Sequence[RunFacts], kind: str, *, finished: bool, ok: bool) -> RunFacts | None:
    pick = [
        r
        for r in runs
        if r.kind == kind and (not finished or r.finished_at is not None) and (not ok or r.all_ok)
    ]
    return max(pick, key=lambda r: r.started_at, default=None)


def _overall(state: str) -> str:
    """A mirror's state among `MIRROR_STATES` (one skipped for another reason, such as having
    no http URL, is unchecked)."""
    return state if state in MIRROR_STATES else "unchecked"


def _mirror_samples(snap: MetricsSnapshot, out: _Out) -> None:
    rows = sorted(snap.mirrors, key=lambda r: r.name)
    out.family(
        "pushsync_mirror_state",
        "1 for the mirror's state (its worst address family's, or why it is not checked), "
        "0 for every other state.",
        (
            ({"mirror": r.name, "state": s}, int(_overall(r.state) == s))
            for r in rows
            for s in MIRROR_STATES
        ),
    )
    out.family(
        "pushsync_mirror_family_state",
        "1 for the state of the mirror on this address family, 0 for every other state.",
        (
            ({"mirror": m, "family": fam, "state": s}, int(state == s))
            for (m, fam), state in sorted(snap.families.items())
            for s in FAMILY_STATES
        ),
    )
    out.family(
        "pushsync_mirror_age_seconds",
        "Age of the mirror's served timestamp file at its newest good check.",
        (({"mirror": r.name}, round(r.age_s)) for r in rows if r.age_s is not None),
    )
    out.family(
        "pushsync_mirror_served_version",
        "Database version the mirror served at its newest good check.",
        (
            ({"mirror": r.name, "database": db}, v)
            for r in rows
            for db, v in sorted(r.served.items())
        ),
    )
    out.family(
        "pushsync_mirror_maintenance",
        "1 while a maintenance window announced for the mirror is in effect (out of the DNS "
        "rotation, no alert mails), with its reason; absent otherwise.",
        (
            ({"mirror": r.name, "reason": r.maintenance.reason, "by": r.maintenance.by}, 1)
            for r in rows
            if r.maintenance is not None
        ),
    )
    out.family(
        "pushsync_mirror_maintenance_end_seconds",
        "When the mirror's maintenance window in effect ends (unix time).",
        (({"mirror": r.name}, r.maintenance.ends) for r in rows if r.maintenance is not None),
    )
    out.family(
        "pushsync_mirror_last_push_ok",
        "1 when the mirror's last publish ended ok, 0 when it did not.",
        (({"mirror": r.name}, int(r.last_push == "ok")) for r in rows if r.last_push is not None),
    )


def _cert_samples(snap: MetricsSnapshot, out: _Out) -> None:
    certs = sorted(snap.certs.items())
    out.family(
        "pushsync_mirror_cert_expiry_seconds",
        "Seconds until the mirror's https certificate expires (negative: expired), as of the "
        "monitor's newest check of it.",
        (
            ({"mirror": m}, round(c.not_after - snap.now))
            for m, c in certs
            if c.not_after is not None
        ),
    )
    out.family(
        "pushsync_mirror_cert_valid",
        "1 when freshclam would accept the mirror's https certificate (chain, name, dates).",
        (({"mirror": m}, int(c.valid)) for m, c in certs),
    )
    out.family(
        "pushsync_mirror_cert_state",
        "1 for the state of the mirror's https certificate, 0 for every other state.",
        (({"mirror": m, "state": s}, int(c.state == s)) for m, c in certs for s in CERT_STATES),
    )


def _run_samples(snap: MetricsSnapshot, out: _Out) -> None:
    newest = {k: _newest(snap.runs, k, finished=False, ok=False) for k in RUN_KINDS}
    done = {k: _newest(snap.runs, k, finished=True, ok=False) for k in RUN_KINDS}
    ok = {k: _newest(snap.runs, k, finished=True, ok=True) for k in RUN_KINDS}
    out.family(
        "pushsync_publish_last_run_start_timestamp_seconds",
        "When the newest run of this kind (release: syncd publish; heartbeat) started.",
        (({"kind": k}, r.started_at) for k, r in newest.items() if r is not None),
    )
    out.family(
        "pushsync_publish_last_run_state",
        "1 for the state of the newest run of this kind, 0 for every other state.",
        (
            ({"kind": k, "state": s}, int(r.state == s))
            for k, r in newest.items()
            if r is not None
            for s in RUN_STATES
        ),
    )
    out.family(
        "pushsync_publish_last_run_end_timestamp_seconds",
        "When the newest ended run of this kind ended.",
        (({"kind": k}, r.finished_at) for k, r in done.items() if r and r.finished_at),
    )
    out.family(
        "pushsync_publish_last_run_duration_seconds",
        "How long the newest ended run of this kind took, start to end.",
        (
            ({"kind": k}, round(r.finished_at - r.started_at, 3))
            for k, r in done.items()
            if r and r.finished_at
        ),
    )
    out.family(
        "pushsync_publish_last_run_mirrors",
        "Mirrors per outcome in the newest ended run of this kind (every outcome, 0 included).",
        (
            ({"kind": k, "outcome": o}, r.outcomes.get(o, 0))
            for k, r in done.items()
            if r is not None
            for o in RUN_OUTCOMES
        ),
    )
    out.family(
        "pushsync_publish_last_success_timestamp_seconds",
        "When the newest run of this kind in which every mirror ended ok ended.",
        (({"kind": k}, r.finished_at) for k, r in ok.items() if r and r.finished_at),
    )


def _summary(out: _Out, name: str, help_text: str, q: Quantiles, times: Sequence[float]) -> None:
    """A summary over the active mirrors: the seconds until each quantile served the release
    (a quantile not yet reached has no sample); ``_count`` the mirrors that served it,
    ``_sum`` their seconds added up."""
    out.family(
        name,
        help_text,
        [
            ({"quantile": _number(k / 100)}, round(v, 3))
            for k in QUANTILES
            if (v := q.get(k)) is not None
        ],
        kind="summary",
        tail=[("_sum", round(sum(times), 3)), ("_count", len(times))],
    )


def _release_samples(snap: MetricsSnapshot, out: _Out) -> None:
    p = snap.release_propagation
    if p is not None:
        q = p.from_start
        served = [s.at for s in p.mirrors if s.at is not None]
        _summary(
            out,
            "pushsync_release_propagation_seconds",
            "Seconds from the newest release's publish start until this share (quantile) of the "
            "active mirrors served it; a share not yet reached has no sample.",
            q,
            [max(0.0, t - p.started_at) for t in served],
        )
        if p.from_build is not None and p.built_at is not None:
            built = p.built_at
            _summary(
                out,
                "pushsync_release_build_propagation_seconds",
                "Seconds from the newest release's build (its CVD header) until this share of the "
                "active mirrors served it.",
                p.from_build,
                [max(0.0, t - built) for t in served],
            )
        out.family(
            "pushsync_release_publish_start_timestamp_seconds",
            "When the newest release's first publish run started.",
            [({}, round(p.started_at, 3))],
        )
        out.family(
            "pushsync_release_served_ratio",
            "Share of the newest release's active mirrors proven to serve it (0 to 1).",
            [({}, round(q.served / q.total, 4) if q.total else 0)],
        )
        out.family(
            "pushsync_release_missing_mirrors",
            "Active mirrors not yet proven to serve the newest release.",
            [({}, len(p.missing))],
        )
        if p.announce_delay_s is not None:
            out.family(
                "pushsync_release_announce_delay_seconds",
                "Seconds from the newest release's publish start until the TXT announced it.",
                [({}, round(p.announce_delay_s, 3))],
            )
    if snap.t90_limit_s is not None:
        out.family(
            "pushsync_release_slow_after_seconds",
            "How long a release may take to reach 90 % of the mirrors ([releases] t90_limit_h).",
            [({}, snap.t90_limit_s)],
        )


def render_metrics(snap: MetricsSnapshot) -> str:
    """Return the metrics in Prometheus' text exposition format."""
    out = _Out()
    _mirror_samples(snap, out)
    _cert_samples(snap, out)
    out.family(
        "pushsync_release_version",
        "Version of each database in the current release (the source tree's CVDs).",
        (({"database": db}, v) for db, v in sorted(snap.release.items())),
    )
    if snap.gate is not None:
        g = snap.gate
        out.family(
            "pushsync_gate_open",
            "1 when enough mirrors serve the release for the TXT record to announce it.",
            [({}, int(g.reached))],
        )
        out.family(
            "pushsync_gate_serving_ratio",
            "Share of active mirrors that serve the current release (0 to 1).",
            [({}, round(g.share, 4))],
        )
        out.family(
            "pushsync_gate_required_ratio",
            "Share the gate requires ([dns] gate_share).",
            [({}, g.required)],
        )
    _run_samples(snap, out)
    _release_samples(snap, out)
    for name, help_text, samples in metric_families(
        snap.traffic, snap.traffic_countries, snap.local_stats
    ):
        out.family(name, help_text, samples)
    out.family(
        "pushsync_monitor_suspects_itself",
        "1 when most mirrors failed at once and the monitor left DNS alone (its own outage?).",
        [({}, int(snap.suspect))],
    )
    out.family(
        "pushsync_monitor_last_run_timestamp_seconds",
        "When the monitor last ran.",
        [({}, round(snap.now))],
    )
    return "\n".join([*out.lines, ""])
