"""One monitor pass end to end: check every mirror, judge it, record it, announce changes,
write the status page and the metrics. Used by ``syncd monitor``."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syncd.dns.gate import Gathered, Recorded, judge, judge_recorded
from syncd.files import read_inventory, read_source_tree, write_atomic
from syncd.inventory.model import Inventory
from syncd.monitor.announce import (
    Mail,
    MirrorChange,
    digest,
    local_stats_mail,
    may_send,
    mirror_mail,
    worth_mailing,
)
from syncd.monitor.certs import CertSeen, CertStatus, cert_mail, due, judge_cert
from syncd.monitor.certstore import CertStore
from syncd.monitor.config import MonitorConfig
from syncd.monitor.freshness import Record, Release, State
from syncd.monitor.mail import MailError, SmtpSettings, send_each, smtp_settings
from syncd.monitor.maintenance import Sighting, Window, describe
from syncd.monitor.outage import suspicion, suspicion_mail
from syncd.monitor.provenstore import Known, ProvenStore
from syncd.monitor.snapshot import (
    CHANGES_SHOWN,
    HISTORY_DAYS,
    RUNS_SEARCHED,
    RUNS_SHOWN,
    Change,
    Snapshot,
)
from syncd.monitor.store import MonitorStore
from syncd.publish.query import PublishQuery
from syncd.release.record import read_releases
from syncd.sqlite import open_db
from syncd.statuspage import build
from syncd.statuspage.metrics import render_metrics
from syncd.statuspage.rows import MirrorStatus
from syncd.statuspage.site import (
    Site,
    render_site,
)
from syncd.text import clean, internal_error
from syncd.traffic import localstats
from syncd.traffic.store import TrafficStore

if TYPE_CHECKING:  # the checks need trio and httpx, DNS dnspython: loaded when a pass runs
    from syncd.dns.update import DnsUpdate
    from syncd.monitor.checks import CheckResult, MirrorFacts, Observation
    from syncd.release.manifest import CvdTail, ReleaseFile
    from syncd.release.tree import SourceTree

DAY = 86_400.0


@dataclass(frozen=True)
class StateChange:
    """One change of a mirror's state on one address family, with its reason."""

    mirror: str
    family: str
    old: str
    new: str
    reason: str

    @property
    def first_fresh(self) -> bool:
        """A mirror's first check that finds it fresh: no news."""
        return self.old == "unknown" and self.new == "fresh"


@dataclass(frozen=True)
class MailTally:
    sent: int
    held: int  # held back by the rate limit
    error: str | None


@dataclass(frozen=True)
class PassSummary:
    """What one monitor pass found and did."""

    checked_at: float
    release: dict[str, int]
    mirrors: list[MirrorStatus]
    changes: list[StateChange]
    mail: MailTally
    suspect: str | None = None  # why the monitor suspects itself (and left DNS alone)
    dns: DnsUpdate | None = None  # what the pass did to the rotation ([dns] configured)
    announcement: dict[str, Any] | None = None  # [announce]: the release's mail, retried
    certs: list[CertStatus] = field(default_factory=list)  # mirrors with an https URL

    def to_json(self) -> dict[str, Any]:
        """The ``syncd monitor --json`` document, one per pass."""
        return {
            "checked_at": self.checked_at,
            "release": self.release,
            "mirrors": [
                {
                    "name": r.name,
                    "state": r.state,
                    "served": r.served,
                    "age_s": r.age_s,
                    "reason": r.reason,
                    "maintenance": r.maintenance_json(),
                }
                for r in self.mirrors
            ],
            "transitions": [
                {
                    "mirror": c.mirror,
                    "family": c.family,
                    "from": c.old,
                    "to": c.new,
                    "reason": c.reason,
                }
                for c in self.changes
            ],
            "mail": {"sent": self.mail.sent, "held": self.mail.held, "error": self.mail.error},
            "suspect": self.suspect,
            "dns": None if self.dns is None else self.dns.to_json(),
            **({"announcement": self.announcement} if self.announcement is not None else {}),
            "certificates": [
                {
                    "mirror": c.mirror,
                    "url": c.url,
                    "state": c.state,
                    "days_left": None
                    if c.not_after is None
                    else round((c.not_after - self.checked_at) / DAY, 2),
                    "problems": list(c.problems),
                }
                for c in self.certs
            ],
        }


def _publish_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)


def _mails(
    outcomes: list[CheckResult],
    *,
    facts: dict[str, MirrorFacts],
    store: MonitorStore,
    cfg: MonitorConfig,
    now: float,
    ids: list[int],
    quiet: Collection[str] = (),
) -> tuple[list[Mail], list[tuple[str, list[int], range]], int]:
    """Return the mails to send, which mirrors (and transitions) they mark as mailed with the
    indices of their mails, and how many were held. A transition of an earlier pass whose mail
    is due (not sent, or held by a maintenance window), and that is still its mirror's newest,
    is sent (not in the digest) unless this pass's check points to a better state (the news
    is on its way out). The mirrors in `quiet` (a maintenance window in effect) mail nobody:
    their changes are recorded and shown; one to a worse state than fresh is due after the
    window, so a mirror still down when its window ends is heard of then."""
    changes: list[MirrorChange] = []
    per_mirror: dict[str, list[tuple[MirrorChange, int]]] = {}
    changed = [o for o in outcomes if o.transition is not None]
    for o, tid in zip(changed, ids, strict=True):
        assert o.transition is not None
        if o.mirror in quiet:
            if o.transition.new is not State.FRESH:
                store.mark_due([tid])
            continue
        f = facts[o.mirror]
        fam = o.family if o.family in ("IPv4", "IPv6") else None
        change = MirrorChange(o.mirror, o.transition, f.admins, f.notify, fam)
        changes.append(change)
        per_mirror.setdefault(o.mirror, []).append((change, tid))
    this_pass = set(ids)
    improving = {(o.mirror, o.family) for o in outcomes if o.record.good_streak > 0}
    for tid, mirror, family, transition in store.due():
        if tid in this_pass or mirror not in facts or mirror in quiet:
            continue
        if (mirror, family) in improving and transition.new is not State.FRESH:
            continue  # due still: sent if the next check does not bring it back
        f = facts[mirror]
        fam = family if family in ("IPv4", "IPv6") else None
        again = MirrorChange(mirror, transition, f.admins, f.notify, fam)
        per_mirror.setdefault(mirror, []).append((again, tid))
    mails: list[Mail] = []
    marks: list[tuple[str, list[int], range]] = []
    held = 0
    for mirror, all_items in per_mirror.items():
        items = [(c, tid) for c, tid in all_items if worth_mailing(c)]
        if not items or not (facts[mirror].admins or facts[mirror].notify):
            continue
        if not may_send(store.last_mailed(mirror), now, cfg.mail_interval_h * 3600):
            held += len(items)
            continue
        first = len(mails)
        mails.extend(mirror_mail(c) for c, _ in items)
        marks.append((mirror, [tid for _, tid in items], range(first, len(mails))))
    team = digest(changes, cfg.team, now)
    if team is not None:
        mails.append(team)
    return mails, marks, held


def _cert_mails(
    statuses: list[CertStatus],
    facts: dict[str, MirrorFacts],
    store: CertStore,
    cfg: MonitorConfig,
    now: float,
) -> list[tuple[Mail, CertStatus, str]]:
    """Each certificate warning due (`syncd.monitor.certs.due`), with what marks it sent."""
    out = []
    for status in statuses:
        f = facts.get(status.mirror)
        to = (f.notify or f.admins) if f is not None else ()
        if not to or status.fingerprint is None:
            continue
        key = due(status, now, store.mailed(status.mirror, status.fingerprint), cfg.cert_warn_days)
        if key is not None:
            out.append((cert_mail(status, key, to, now), status, key))
    return out


def _judge_certs(
    conn: sqlite3.Connection,
    seen: list[CertSeen],
    facts: dict[str, MirrorFacts],
    cfg: MonitorConfig,
    *,
    now: float,
    suspect: str | None,
    quiet: Collection[str] = (),
) -> tuple[CertStore, list[CertStatus], list[tuple[Mail, CertStatus, str]]]:
    """Judge and record each certificate seen; return the store, the statuses and the
    warnings due: none while the monitor suspects itself, none to a mirror in a maintenance
    window (`quiet`): a warning is recorded only once sent, so a held one goes with the
    first pass after the window."""
    store = CertStore(conn)
    statuses = [judge_cert(c, now, cfg.cert_warn_days) for c in seen]
    store.save(statuses, [c.mirror for c in seen])
    if suspect:
        return store, statuses, []
    due = _cert_mails(statuses, facts, store, cfg, now)
    return store, statuses, [w for w in due if w[1].mirror not in quiet]


def _mark_warnings(
    store: CertStore,
    warnings: list[tuple[Mail, CertStatus, str]],
    errors: list[str | None],
    now: float,
) -> None:
    """Record each warning that went (its error None): it is never sent again."""
    for (_, status, key), error in zip(warnings, errors, strict=False):
        if error is None and status.fingerprint:
            store.mark_mailed(status.mirror, status.fingerprint, key, now)


StatsAnswers = dict[str, tuple[int | None, str | None, str | None]]


@dataclass
class _Seen:
    """What one pass's checks found: the HTTP checks, the https certificates, and each
    mirror's /local_stats/ answer (status, redirect, error)."""

    observations: list[Observation]
    certs: list[CertSeen]
    local_stats: StatsAnswers


def _look(
    facts: dict[str, MirrorFacts],
    tls: list[tuple[str, str]],
    cfg: MonitorConfig,
    *,
    clock: Callable[[], float],
    release: Release,
    source: SourceTree,
    known: Known | None,
) -> _Seen:
    """Run the pass's checks (`_observe_all`) to their end."""
    import trio

    return trio.run(
        lambda: _observe_all(
            facts,
            tls,
            cfg,
            clock=clock,
            release=release,
            files=source.files,
            tails=source.tails,
            known=known,
        )
    )


async def _observe_all(
    facts: dict[str, MirrorFacts],
    tls: list[tuple[str, str]],
    cfg: MonitorConfig,
    *,
    clock: Callable[[], float],
    release: Release,
    files: Sequence[ReleaseFile],
    tails: Sequence[CvdTail],
    known: Known | None,
) -> _Seen:
    """The HTTP checks (`syncd.monitor.checks.observe`; with `known`, what earlier passes
    proved, conditional) and, at the same time, the certificates of the mirrors with an
    https URL (`syncd.monitor.certcheck`) and every mirror's /local_stats/."""
    import trio

    from syncd.monitor.certcheck import observe_certs
    from syncd.monitor.checks import MonitorTarget, observe

    seen: list[CertSeen] = []
    stats: StatsAnswers = {}
    targets = [MonitorTarget(f.name, f.http, f.country) for f in facts.values()]

    async def local_stats() -> None:
        stats.update(await _ask_local_stats(facts, cfg))

    async def certs() -> None:
        seen.extend(
            await observe_certs(
                tls,
                cafile=str(cfg.https_cafile) if cfg.https_cafile else None,
                concurrency=cfg.concurrency,
                timeout_s=cfg.request_timeout_s,
                deadline_s=cfg.run_deadline_s,
                clock=clock,
            )
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(certs)
        nursery.start_soon(local_stats)
        found = await observe(
            targets,
            sorted(release.versions),
            concurrency=cfg.concurrency,
            timeout_s=cfg.request_timeout_s,
            deadline_s=cfg.run_deadline_s,
            clock=clock,
            files=files,
            tails=tails,
            known=known,
        )
    return _Seen(found, seen, stats)


def _publish_site(index: Path, site: Site) -> None:
    """Write every file of the site beside `index` (each atomically); drop the pages of
    mirrors no longer listed."""
    base = index.parent
    files = render_site(site)
    for rel, text in files.items():
        _publish_file(index if rel == "index.html" else base / rel, text)
    pages = base / "mirrors"
    wanted = {base / rel for rel in files}
    for old in pages.glob("*.html"):
        if old not in wanted:
            old.unlink(missing_ok=True)


def _maintenance(
    conn: sqlite3.Connection,
    inv: Inventory,
    observations: Sequence[Observation],
    *,
    cfg: MonitorConfig,
    now: float,
    pool_ttl: float,
) -> dict[str, Window]:
    """Record what each mirror's /local_maintenance said this pass; return the windows in
    effect now (`syncd.monitor.maintenance`)."""
    from syncd.monitor.notices import NoticeStore, in_effect, lead

    seen: dict[str, Sighting] = {}
    for o in observations:
        if o.notice is not None:
            seen.setdefault(o.mirror, o.notice)
    NoticeStore(conn).save(seen.items())
    ahead = lead(conn, cfg.interval_s, pool_ttl)
    return in_effect(conn, inv, now, lead=ahead, max_s=cfg.maintenance_max_days * DAY)


def read_snapshot(
    conn: sqlite3.Connection,
    mirrors: Iterable[str],
    now: float,
    records: Mapping[tuple[str, str], Record] | None = None,
) -> Snapshot:
    """Read the record once for `mirrors` (checks: all the record retains; state changes: the
    last HISTORY_DAYS). `records`: every mirror's freshness as the pass knows it (it saved
    them), not read again; None: read."""
    monitor, publish, traffic = MonitorStore(conn), PublishQuery(conn), TrafficStore(conn)
    names = list(mirrors)
    since = now - HISTORY_DAYS * DAY
    runs = publish.runs(RUNS_SEARCHED)
    shown = runs[:RUNS_SHOWN]
    return Snapshot(
        now=now,
        records=dict(monitor.records() if records is None else records),
        checks={m: monitor.history(m, 0.0) for m in names},
        states={m: monitor.state_history(m, since) for m in names},
        changes={
            m: [
                Change(t["family"], t["at"], t["old"], t["new"], t["reason"])
                for t in monitor.transitions(m, limit=CHANGES_SHOWN)
            ]
            for m in names
        },
        published=publish.mirror_states(),
        runs=runs,
        run_targets={r.run_id: publish.targets(r.run_id) for r in shown},
        run_outcomes=publish.outcome_counts([r.run_id for r in runs]),
        releases=read_releases(conn),
        certs={m: c for m, c in CertStore(conn).statuses().items() if m in names},
        traffic={m: rows for m, rows in traffic.reports(since - DAY).items() if m in names},
        local_stats={
            m: (r.verdict, r.detail) for m, r in traffic.local_stats().items() if m in names
        },
    )


async def _ask_local_stats(facts: dict[str, MirrorFacts], cfg: MonitorConfig) -> StatsAnswers:
    """Every checked mirror's /local_stats/, asked without credentials (status only)."""
    from syncd.httpcheck.client import local_stats_each

    return await local_stats_each(
        [(f.name, f.http) for f in facts.values()],
        timeout_s=cfg.request_timeout_s,
        deadline_s=cfg.request_timeout_s,
        concurrency=cfg.concurrency,
        overall_s=cfg.run_deadline_s,
    )


def _local_stats(
    store: TrafficStore,
    answers: dict[str, tuple[int | None, str | None, str | None]],
    facts: dict[str, MirrorFacts],
    now: float,
) -> list[Mail]:
    """Record each mirror's /local_stats/ verdict; return the mails to the admins of the
    mirrors whose /local_stats/ has just been found open to the world."""
    mails = []
    for name, (status, location, error) in sorted(answers.items()):
        # one mirror's failure boundary: whatever its step raises is its own, never the pass's
        saved = False
        try:
            verdict = localstats.judge(status, location, error)
            warn = store.save_local_stats(name, now, verdict.verdict, verdict.detail)
            saved = True
            f = facts.get(name)
            if warn and f is not None:
                mail = local_stats_mail(name, verdict.detail, f.notify or f.admins)
                if mail.to:
                    mails.append(mail)
        except Exception as err:
            if saved:  # its verdict stands as judged: only its mail could not be built
                continue
            with contextlib.suppress(Exception):  # the record refused it: this pass's alone
                store.save_local_stats(name, now, "unclear", internal_error(err))
    return mails


def _guard(
    outcomes: list[CheckResult],
    guard: MonitorStore,
    cfg: MonitorConfig,
    now: float,
    quiet: Collection[str] = (),
) -> tuple[str | None, Mail | None]:
    """Whether this pass suspects itself (and the team's mail when an episode begins). A
    mirror in `quiet` (in maintenance) is expected to fail: it does not count."""
    counted = ((o.mirror, o.family, o.check.ok) for o in outcomes if o.mirror not in quiet)
    suspect = suspicion(counted, cfg.outage_share)
    if suspect is None:
        guard.trusted()
        return None, None
    if guard.suspect(now, suspect):
        return suspect, suspicion_mail(suspect, cfg.team, now)
    return suspect, None


def _send(
    mails: list[Mail],
    marks: list[tuple[str, list[int], range]],
    store: MonitorStore,
    cfg: MonitorConfig,
    *,
    now: float,
    send_mail: bool,
) -> tuple[int, str | None, list[str | None]]:
    """Send `mails`; mark each mirror's mailed transitions; return how many went, the first
    error, and each mail's error (None: sent). A mail not sent stays due: the next pass
    retries it."""
    if not mails or not send_mail:
        return 0, None, []
    errors, mail_error = _deliver(mails, cfg)
    failed = {i for i, e in enumerate(errors) if e is not None}
    for mirror, tids, which in marks:
        if failed & set(which):  # a mail not sent stays due: the next pass sends it again
            store.mark_due(tids)
        else:
            store.mark_mailed(mirror, now, tids)
    return errors.count(None), mail_error, errors


def _outputs(
    cfg: MonitorConfig,
    inv: Inventory,
    rows: list[MirrorStatus],
    snap: Snapshot,
    *,
    release: Release,
    checked: set[str],
    gate_share: float | None,
    suspect: str | None,
    t90_limit_s: float | None = None,
    judged: Gathered | None,
) -> None:
    """Write the status site and the metrics configured in [monitor], from the pass's one
    snapshot, both showing one gate verdict (from the mirrors' evidence the pass `judged` as
    ``syncd dns`` judges it, and handed to the rotation)."""
    verdict = None
    if gate_share is not None and judged is not None:
        verdict = judge(judged.mirrors, dict(release.versions), gate_share)
    if cfg.status_page:
        site = build.site(
            inv,
            rows,
            snap,
            release=release,
            gate_share=gate_share,
            verdict=verdict,
            suspect=suspect,
        )
        _publish_site(cfg.status_page, site)
    if cfg.metrics:
        snapshot = build.metrics(
            rows,
            snap,
            release=release,
            checked=checked,
            gate_share=gate_share,
            verdict=verdict,
            suspect=suspect,
            t90_limit_s=t90_limit_s,
        )
        _publish_file(cfg.metrics, render_metrics(snapshot))


def run_pass(
    *,
    inventory: Path,
    state: Path,
    source_tree: Path,
    cfg: MonitorConfig,
    send_mail: bool,
    clock: Callable[[], float],
    gate_share: float | None = None,
    http_check: bool = True,
    rotate: Callable[[Inventory, SourceTree, Gathered], DnsUpdate] | None = None,
    t90_limit_s: float | None = None,
    pool_ttl: float = 0.0,
) -> PassSummary:
    """One monitor pass, its checks and judgements timed by `clock` (unix seconds: the real
    clock in production, a pinned one in tests); return its summary. `gate_share` ([dns]
    gate_share, None without [dns]) and `http_check` ([policy]) judge the release gate that
    the status page and the metrics show. `rotate` ([dns] configured) brings the rotation in
    line with this pass's findings (no TXT change), given the mirrors' evidence judged from
    the pass's snapshot (the record is read once per pass); it is skipped while the monitor
    suspects itself (``syncd.monitor.outage``). `t90_limit_s` ([releases] t90_limit_h):
    exported with the metrics, what the late-release alert compares with. `pool_ttl` ([dns]
    pool_ttl): how long before its start a maintenance window takes effect, with one monitor
    interval (``syncd.monitor.maintenance``)."""
    from syncd.monitor.checks import apply_policy

    inv = read_inventory(inventory)
    source = read_source_tree(source_tree)  # the release, read once
    release = Release(source.versions, source.built_at)
    facts, skipped = _checked(inv)
    tls = [(m.name, m.https) for m in inv.mirrors if m.name in facts and m.https]
    known = _known(state) if cfg.conditional else None
    seen = _look(facts, tls, cfg, clock=clock, release=release, source=source, known=known)
    observations = seen.observations
    now = clock()
    conn = open_db(state)
    try:
        _remember_proven(conn, known, observations, facts, now)
        store = MonitorStore(conn)
        windows = _maintenance(conn, inv, observations, cfg=cfg, now=now, pool_ttl=pool_ttl)
        before = store.records()
        outcomes = apply_policy(observations, before, release, cfg.thresholds())
        suspect, doubt = _guard(outcomes, store, cfg, now, windows)
        if suspect is not None:  # the checks are recorded; no mirror is judged on them
            outcomes = [
                replace(o, record=before.get((o.mirror, o.family), Record()), transition=None)
                for o in outcomes
            ]
        ids = store.save((o.mirror, o.family, o.check, o.record, o.transition) for o in outcomes)
        mails, marks, held = _mails(
            outcomes, facts=facts, store=store, cfg=cfg, now=now, ids=ids, quiet=windows
        )
        # once, as a /local_stats/ turns open to the world (the page and metrics keep it)
        mails += _local_stats(TrafficStore(conn), seen.local_stats, facts, now)
        certs, statuses, warnings = _judge_certs(
            conn, seen.certs, facts, cfg, now=now, suspect=suspect, quiet=windows
        )
        first_warning = len(mails)
        mails.extend(m for m, _, _ in warnings)
        if doubt is not None:
            mails.append(doubt)
        sent, mail_error, errors = _send(mails, marks, store, cfg, now=now, send_mail=send_mail)
        _mark_warnings(certs, warnings, errors[first_warning:], now)
        if doubt is not None and errors and errors[-1] is None:  # once per episode: it went
            store.mailed_suspicion()
        store.prune(now - cfg.retention_days * DAY)
        TrafficStore(conn).prune(now - max(cfg.retention_days, HISTORY_DAYS + 1) * DAY)
        after = {**before, **{(o.mirror, o.family): o.record for o in outcomes}}  # as saved
        snap = read_snapshot(conn, [*facts, *skipped], now, records=after)
        out_for = {n: describe(w, now) for n, w in windows.items()}
        judged = None
        if gate_share is not None or rotate is not None:  # the gate's evidence, judged once
            judged = judge_recorded(inv, _recorded(inv, snap, out_for), http_check=http_check)
        dns = None
        if rotate is not None and suspect is None and judged is not None:
            dns = rotate(inv, source, judged)
    finally:
        conn.close()
    rows = build.status_rows({n: f.country for n, f in facts.items()}, snap, skipped, windows)
    _outputs(
        cfg,
        inv,
        rows,
        snap,
        release=release,
        checked=set(facts),
        gate_share=gate_share,
        suspect=suspect,
        t90_limit_s=t90_limit_s,
        judged=judged,
    )
    changes = [
        StateChange(
            o.mirror, o.family, o.transition.old.value, o.transition.label, o.transition.reason
        )
        for o in outcomes
        if o.transition is not None
    ]
    return PassSummary(
        now,
        dict(release.versions),
        rows,
        changes,
        MailTally(sent, held, mail_error),
        suspect,
        dns,
        certs=statuses,
    )


def _recorded(inv: Inventory, snap: Snapshot, maintenance: Mapping[str, str]) -> Recorded:
    """What the gate judges of each mirror, as the pass's snapshot holds it."""
    return Recorded(
        published=snap.published,
        records=snap.records,
        latest_good={m.name: snap.latest_good(m.name) for m in inv.mirrors},
        maintenance=maintenance,
    )


def _checked(inv: Inventory) -> tuple[dict[str, MirrorFacts], dict[str, str]]:
    """The mirrors a pass checks (with what the mail needs of each), and those it skips with
    why."""
    from syncd.monitor.checks import MirrorFacts

    facts: dict[str, MirrorFacts] = {}
    skipped: dict[str, str] = {}
    for m in inv.mirrors:
        if not m.active:
            skipped[m.name] = "disabled"
        elif m.pending:
            skipped[m.name] = "pending"
        elif not m.http:
            skipped[m.name] = "no http URL"
        else:
            facts[m.name] = MirrorFacts(m.name, m.http, m.country, tuple(m.admins), tuple(m.notify))
    return facts, skipped


def _remember_proven(
    conn: sqlite3.Connection,
    known: Known | None,
    observations: list[Observation],
    facts: Mapping[str, MirrorFacts],
    now: float,
) -> None:
    """Keep what this pass proved for the next (with conditional checks on: `known` read)."""
    if known is not None:
        ProvenStore(conn).replace(
            {(o.mirror, o.family): o.proven for o in observations if o.proven is not None},
            facts,
            now,
        )


def _known(state: Path) -> Known:
    """What earlier passes proved each mirror serves (read before the checks, the record closed
    while they run)."""
    conn = open_db(state)
    try:
        return ProvenStore(conn).known()
    finally:
        conn.close()


def repeat(
    one_pass: Callable[[], PassSummary],
    *,
    interval_s: float,
    passes: int | None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> Iterator[PassSummary]:
    """Run `one_pass` every `interval_s` seconds (from the start of one to the start of the
    next), `passes` times or until interrupted; yield each pass's summary as it ends."""
    done = 0
    while True:
        started = monotonic()
        yield one_pass()
        done += 1
        if passes is not None and done >= passes:
            return
        sleep(max(0.0, interval_s - (monotonic() - started)))


def _deliver(mails: list[Mail], cfg: MonitorConfig) -> tuple[list[str | None], str | None]:
    """Send `mails`; return, for each, None or why it was not sent, and the first error. What
    sending raises besides MailError (a bug met building one mail) fails every mail of this
    pass (none is marked sent), and the page and the metrics are written all the same."""
    try:
        errors = send_each(mails, _smtp(cfg))
    except MailError as err:
        return [str(err)] * len(mails), str(err)
    except Exception as err:
        why = clean(f"mail failed unexpectedly: {type(err).__name__}: {err}", 300)
        return [why] * len(mails), why
    return errors, next((e for e in errors if e is not None), None)


def _smtp(cfg: MonitorConfig) -> SmtpSettings:
    if cfg.smtp is None:
        raise MailError("no [monitor.smtp] in syncd.toml: add one, or run with --no-mail")
    return smtp_settings(cfg.smtp, cfg.smtp.sender)
