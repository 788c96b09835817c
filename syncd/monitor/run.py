"""One monitor pass end to end: check every mirror, judge it, record it, announce changes,
write the status page and the metrics. Used by ``syncd monitor``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syncd.dns.gate import GateVerdict, evidence, judge
from syncd.dns.store import DnsStore
from syncd.files import (
    read_cvd_tails,
    read_inventory,
    read_manifest,
    read_release_headers,
    write_atomic,
)
from syncd.inventory.model import Inventory
from syncd.monitor.announce import (
    Mail,
    MirrorChange,
    digest,
    may_send,
    mirror_mail,
    worth_mailing,
)
from syncd.monitor.config import MonitorConfig
from syncd.monitor.freshness import Release, State, figures
from syncd.monitor.mail import MailError, SmtpSettings, send_each
from syncd.monitor.outage import suspicion, suspicion_mail
from syncd.monitor.store import MonitorStore
from syncd.publish.store import PublishStore
from syncd.sqlite import open_db
from syncd.statuspage.metrics import GateFacts, MetricsSnapshot, RunFacts, render_metrics
from syncd.statuspage.rows import MirrorStatus
from syncd.statuspage.site import (
    ChangeView,
    FamilyView,
    GateView,
    MirrorView,
    RunView,
    Site,
    render_site,
    state_spans,
)
from syncd.text import clean

if TYPE_CHECKING:  # the checks need trio and httpx, DNS dnspython: loaded when a pass runs
    from syncd.dns.update import DnsUpdate
    from syncd.monitor.checks import CheckResult, MirrorFacts

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
        }


def release_of(tree: Path) -> Release:
    """The release the source tree holds: versions and build time from the CVD headers."""
    versions: dict[str, int] = {}
    built = 0.0
    for db, h in read_release_headers(tree).items():
        versions[db] = h.version
        built = max(built, float(h.unix_time or 0))
    if not built:
        built = max((tree / f"{db}.cvd").stat().st_mtime for db in versions)
    return Release(versions, built)


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
) -> tuple[list[Mail], list[tuple[str, list[int], range]], int]:
    """Return the mails to send, which mirrors (and transitions) they mark as mailed with the
    indices of their mails, and how many were held. A transition of an earlier pass whose mail
    was not sent, and that is still its mirror's newest, is sent again (not in the digest)."""
    changes: list[MirrorChange] = []
    per_mirror: dict[str, list[tuple[MirrorChange, int]]] = {}
    changed = [o for o in outcomes if o.transition is not None]
    for o, tid in zip(changed, ids, strict=True):
        assert o.transition is not None
        f = facts[o.mirror]
        fam = o.family if o.family in ("IPv4", "IPv6") else None
        change = MirrorChange(o.mirror, o.transition, f.admins, f.notify, fam)
        changes.append(change)
        per_mirror.setdefault(o.mirror, []).append((change, tid))
    this_pass = set(ids)
    for tid, mirror, family, transition in store.due():
        if tid in this_pass or mirror not in facts:
            continue
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


def _status_rows(
    facts: dict[str, MirrorFacts],
    store: MonitorStore,
    pstore: PublishStore,
    now: float,
    skipped: dict[str, str],
) -> list[MirrorStatus]:
    from syncd.monitor.checks import worst

    records = store.records()
    last_push = {s.mirror: s.outcome for s in pstore.mirror_states()}
    rows = []
    for name, f in facts.items():
        recs = [r for (m, _), r in records.items() if m == name]
        checks = store.checks(name, now - 7 * DAY)
        ok = [c for c in checks if c.ok and c.timestamp is not None]
        latest = ok[-1] if ok else None
        week, day = figures(checks, now - 7 * DAY), figures(checks, now - DAY)
        transitions = store.transitions(name, limit=1)
        rec = worst(recs) if recs else None
        rows.append(
            MirrorStatus(
                name=name,
                country=f.country,
                state=rec.state.value if rec else "unchecked",
                since=rec.since if rec and rec.state is not State.UNKNOWN else None,
                age_s=(now - latest.timestamp) if latest and latest.timestamp else None,
                served=dict(latest.versions or {}) if latest else {},
                completion_24h=day.completion if day.checks else None,
                completion_7d=week.completion if week.checks else None,
                mean_delay_7d_s=week.mean_delay_s,
                score=week.score,
                last_push=last_push.get(name),
                reason=transitions[0]["reason"] if transitions else "",
            )
        )
    for name, why in skipped.items():
        rows.append(
            MirrorStatus(
                name, "-", why, None, None, {}, None, None, None, None, last_push.get(name)
            )
        )
    return rows


HISTORY_DAYS = 30
RUNS_SHOWN = 30
CHANGES_SHOWN = 20


def _site(
    inv: Inventory,
    rows: list[MirrorStatus],
    store: MonitorStore,
    pstore: PublishStore,
    *,
    release: Release,
    now: float,
    gate_share: float | None,
    verdict: GateVerdict | None,
) -> Site:
    """What the status site shows: the rows, each mirror's history, the gate."""
    since = now - HISTORY_DAYS * DAY
    records = store.records()
    runs: dict[str, list[RunView]] = {}
    for run in pstore.runs(limit=RUNS_SHOWN):
        for t in pstore.targets(run.run_id):
            runs.setdefault(t.mirror, []).append(
                RunView(
                    run.run_id,
                    run.kind,
                    run.started_at,
                    t.finished_at,
                    t.outcome,
                    t.attempts,
                    t.error,
                )
            )
    by_name = {m.name: m for m in inv.mirrors}
    views = []
    for row in rows:
        m = by_name.get(row.name)
        checks, states = store.history(row.name, since), store.state_history(row.name, since)
        families = []
        for (name, fam), rec in sorted(records.items()):
            if name != row.name:
                continue
            known = rec.state is not State.UNKNOWN
            spans = state_spans(states.get(fam, []), rec.state.value, now)
            families.append(
                FamilyView(
                    fam,
                    rec.state.value,
                    rec.since if known else None,
                    tuple(checks.get(fam, [])),
                    spans,
                )
            )
        changes = tuple(
            ChangeView(t["family"], t["at"], t["old"], t["new"], t["reason"])
            for t in store.transitions(row.name, limit=CHANGES_SHOWN)
        )
        views.append(
            MirrorView(
                row,
                host=m.host if m else "",
                http=(m.http or "") if m else "",
                admins=tuple(m.admins) if m else (),
                families=tuple(families),
                runs=tuple(runs.get(row.name, [])),
                changes=changes,
            )
        )
    gate = None
    if gate_share is not None and verdict is not None:
        gate = GateView(
            verdict.reached, verdict.share, gate_share, verdict.reason, verdict.laggards
        )
    return Site(now, dict(release.versions), release.released_at or None, gate, tuple(views))


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


def run_facts(pstore: PublishStore, limit: int = 200) -> list[RunFacts]:
    """The newest runs of each kind the metrics need: the newest, the newest ended, and the
    newest in which every mirror ended ok (searched among the last `limit` runs)."""
    out: list[RunFacts] = []
    wanted = {(k, w) for k in ("release", "heartbeat") for w in ("any", "ended", "ok")}
    for run in pstore.runs(limit):
        if not wanted:
            break
        counts: dict[str, int] = {}
        for t in pstore.targets(run.run_id):
            counts[t.outcome or "none"] = counts.get(t.outcome or "none", 0) + 1
        facts = RunFacts(run.kind, run.state, run.started_at, run.finished_at, counts)
        now_wanted = {(run.kind, "any")}
        if run.finished_at is not None:
            now_wanted.add((run.kind, "ended"))
            if facts.all_ok:
                now_wanted.add((run.kind, "ok"))
        if now_wanted & wanted:
            out.append(facts)
            wanted -= now_wanted
    return out


def gate_verdict(
    inv: Inventory,
    store: MonitorStore,
    pstore: PublishStore,
    release: dict[str, int],
    *,
    share: float,
    http_check: bool,
) -> GateVerdict:
    """The release gate as ``syncd dns`` judges it, from the same record (see
    syncd.dns.update.gather), without resolving the mirrors' addresses: the
    metrics and the status page show this one verdict."""
    published = {s.mirror: s for s in pstore.mirror_states()}
    records = store.records()
    mirrors = []
    for m in inv.mirrors:
        checks = [c for c in store.checks(m.name, 0.0) if c.ok and c.versions]
        mirrors.append(
            evidence(
                m.name,
                m.country,
                live=m.active and not m.pending,
                push=published.get(m.name),
                latest_check=checks[-1] if checks else None,
                states=[r.state for (name, _), r in records.items() if name == m.name],
                http_proof=bool(m.http) and http_check,
            )
        )
    return judge(mirrors, release, share)


def _outputs(
    cfg: MonitorConfig,
    inv: Inventory,
    rows: list[MirrorStatus],
    store: MonitorStore,
    pstore: PublishStore,
    *,
    checked: set[str],
    release: Release,
    now: float,
    gate_share: float | None,
    http_check: bool,
    suspect: str | None = None,
) -> tuple[Site | None, str | None]:
    """The status site and the metrics text this pass writes (each None when not configured),
    both showing one gate verdict."""
    verdict = (
        None
        if gate_share is None
        else gate_verdict(
            inv, store, pstore, dict(release.versions), share=gate_share, http_check=http_check
        )
    )
    site = None
    if cfg.status_page:
        site = _site(
            inv,
            rows,
            store,
            pstore,
            release=release,
            now=now,
            gate_share=gate_share,
            verdict=verdict,
        )
        site = replace(site, suspect=suspect)
    metrics = None
    if cfg.metrics:
        gate = (
            None
            if gate_share is None or verdict is None
            else GateFacts(verdict.reached, verdict.share, gate_share)
        )
        states = {k: r.state.value for k, r in store.records().items() if k[0] in checked}
        metrics = render_metrics(
            MetricsSnapshot(
                now,
                dict(release.versions),
                rows,
                states,
                run_facts(pstore),
                gate,
                suspect=suspect is not None,
            )
        )
    return site, metrics


def _guard(
    outcomes: list[CheckResult], guard: DnsStore, cfg: MonitorConfig, now: float
) -> tuple[str | None, Mail | None]:
    """Whether this pass suspects itself (and the team's mail when an episode begins)."""
    suspect = suspicion(((o.mirror, o.family, o.check.ok) for o in outcomes), cfg.outage_share)
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
) -> tuple[int, str | None]:
    """Send `mails`; mark each mirror's mailed transitions; return how many went and the
    first error. A mail not sent stays due: the next pass retries it."""
    if not mails or not send_mail:
        return 0, None
    errors, mail_error = _deliver(mails, cfg)
    failed = {i for i, e in enumerate(errors) if e is not None}
    for mirror, tids, which in marks:
        if failed & set(which):  # a mail not sent stays due: the next pass sends it again
            store.mark_due(tids)
        else:
            store.mark_mailed(mirror, now, tids)
    return errors.count(None), mail_error


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
    rotate: Callable[[], DnsUpdate] | None = None,
) -> PassSummary:
    """One monitor pass, its checks and judgements timed by `clock` (unix seconds: the real
    clock in production, a pinned one in tests); return its summary. `gate_share` ([dns]
    gate_share, None without [dns]) and `http_check` ([policy]) judge the release gate that
    the status page and the metrics show. `rotate` ([dns] configured) brings the rotation in
    line with this pass's findings (no TXT change); it is skipped while the monitor suspects
    itself (``syncd.monitor.outage``)."""
    from syncd.monitor.checks import MirrorFacts, MonitorTarget, apply_policy, observe

    inv = read_inventory(inventory)
    release = release_of(source_tree)
    files = read_manifest(source_tree)[1]
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
    targets = [MonitorTarget(f.name, f.http, f.country) for f in facts.values()]
    import trio

    observations = trio.run(
        lambda: observe(
            targets,
            sorted(release.versions),
            concurrency=cfg.concurrency,
            timeout_s=cfg.request_timeout_s,
            deadline_s=cfg.run_deadline_s,
            clock=clock,
            files=files,
            tails=read_cvd_tails(source_tree),
        )
    )
    now = clock()
    conn = open_db(state)
    try:
        store, pstore = MonitorStore(conn), PublishStore(conn)
        outcomes = apply_policy(observations, store.records(), release, cfg.thresholds())
        ids = store.save((o.mirror, o.family, o.check, o.record, o.transition) for o in outcomes)
        mails, marks, held = _mails(outcomes, facts=facts, store=store, cfg=cfg, now=now, ids=ids)
        guard = DnsStore(conn)
        suspect, doubt = _guard(outcomes, guard, cfg, now)
        if doubt is not None:
            mails.append(doubt)
        sent, mail_error = _send(mails, marks, store, cfg, now=now, send_mail=send_mail)
        if doubt is not None and mail_error is None and send_mail:  # once per episode: sent
            guard.mailed_suspicion()
        dns = rotate() if rotate is not None and suspect is None else None
        store.prune(now - cfg.retention_days * DAY)
        rows = _status_rows(facts, store, pstore, now, skipped)
        site, metrics = _outputs(
            cfg,
            inv,
            rows,
            store,
            pstore,
            checked=set(facts),
            release=release,
            now=now,
            gate_share=gate_share,
            http_check=http_check,
            suspect=suspect,
        )
    finally:
        conn.close()
    if cfg.status_page and site is not None:
        _publish_site(cfg.status_page, site)
    if cfg.metrics and metrics is not None:
        _publish_file(cfg.metrics, metrics)
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
    )


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
    s = cfg.smtp
    if s is None:
        raise MailError("no [monitor.smtp] in syncd.toml: add one, or run with --no-mail")
    password = None
    if s.password_file is not None:
        try:
            password = s.password_file.read_text().strip()
        except OSError as err:
            raise MailError(f"cannot read [monitor.smtp] password_file: {err.strerror}") from None
    return SmtpSettings(
        s.host,
        s.port,
        s.sender,
        s.starttls,
        s.username,
        password,
        cafile=str(s.cafile) if s.cafile else None,
    )
