"""One monitor pass end to end: check every mirror, judge it, record it, announce changes,
write the status page and the metrics. Used by ``syncd monitor``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pushwire.cvd import CvdError, parse_header
from syncd.adapters.files import read_cvd_headers, read_inventory
from syncd.adapters.mail import MailError, SmtpSettings, send_all
from syncd.adapters.monitorstore import MonitorStore
from syncd.adapters.publishstore import PublishStore
from syncd.adapters.sqlite import open_db
from syncd.core.announce import Mail, MirrorChange, digest, may_send, mirror_mail
from syncd.core.config import ConfigError
from syncd.core.freshness import Release, figures
from syncd.core.monitorconfig import MonitorConfig
from syncd.core.statuspage import MirrorStatus, render_html, render_metrics

if TYPE_CHECKING:  # the checks need trio and httpx: loaded when a pass runs
    from syncd.orchestration.monitor import MirrorFacts, Outcome

DAY = 86_400.0


def release_of(tree: Path) -> Release:
    """The release the source tree holds: versions and build time from the CVD headers."""
    versions: dict[str, int] = {}
    built = 0.0
    for db, head in read_cvd_headers(tree).items():
        try:
            h = parse_header(head)
        except CvdError as err:
            raise ConfigError(f"{tree}/{db}.cvd: {err}") from None
        versions[db] = h.version
        built = max(built, float(h.unix_time or 0))
    if not built:
        built = max((tree / f"{db}.cvd").stat().st_mtime for db in versions)
    return Release(versions, built)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _mails(
    outcomes: list[Outcome],
    *,
    facts: dict[str, MirrorFacts],
    store: MonitorStore,
    cfg: MonitorConfig,
    now: float,
    ids: list[int],
) -> tuple[list[Mail], list[tuple[str, list[int]]], int]:
    """Return the mails to send, which mirrors they mark as mailed, and how many were held."""
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
    mails: list[Mail] = []
    marks: list[tuple[str, list[int]]] = []
    held = 0
    for mirror, items in per_mirror.items():
        if not (facts[mirror].admins or facts[mirror].notify):
            continue
        if not may_send(store.last_mailed(mirror), now, cfg.mail_interval_h * 3600):
            held += len(items)
            continue
        mails.extend(mirror_mail(c) for c, _ in items)
        marks.append((mirror, [tid for _, tid in items]))
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
    from syncd.orchestration.monitor import worst

    records = store.records()
    last_push = {s["mirror"]: s["outcome"] for s in pstore.mirror_states()}
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
                since=rec.since if rec else None,
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


def run_pass(
    *,
    inventory: Path,
    state: Path,
    source_tree: Path,
    cfg: MonitorConfig,
    send_mail: bool,
) -> dict[str, Any]:
    """One monitor pass; return its JSON-ready summary."""
    from syncd.orchestration.monitor import MirrorFacts, MonitorTarget, apply_policy, observe

    inv = read_inventory(inventory)
    release = release_of(source_tree)
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
        )
    )
    now = time.time()
    conn = open_db(state)
    try:
        store, pstore = MonitorStore(conn), PublishStore(conn)
        outcomes = apply_policy(observations, store.records(), release, cfg.thresholds())
        ids = store.save((o.mirror, o.family, o.check, o.record, o.transition) for o in outcomes)
        mails, marks, held = _mails(outcomes, facts=facts, store=store, cfg=cfg, now=now, ids=ids)
        mail_error = None
        if mails and send_mail:
            try:
                send_all(mails, _smtp(cfg))
                for mirror, tids in marks:
                    store.mark_mailed(mirror, now, tids)
            except MailError as err:
                mail_error = str(err)
        store.prune(now - cfg.retention_days * DAY)
        rows = _status_rows(facts, store, pstore, now, skipped)
    finally:
        conn.close()
    if cfg.status_page:
        _atomic_write(cfg.status_page, render_html(rows, dict(release.versions), now))
    if cfg.metrics:
        _atomic_write(cfg.metrics, render_metrics(rows, now))
    return {
        "checked_at": now,
        "release": dict(release.versions),
        "mirrors": [
            {
                "name": r.name,
                "state": r.state,
                "served": r.served,
                "age_s": r.age_s,
                "reason": r.reason,
            }
            for r in rows
        ],
        "transitions": [
            {
                "mirror": o.mirror,
                "family": o.family,
                "from": o.transition.old.value,
                "to": o.transition.label,
                "reason": o.transition.reason,
            }
            for o in outcomes
            if o.transition is not None
        ],
        "mail": {
            "sent": len(mails) if send_mail and not mail_error else 0,
            "held": held,
            "error": mail_error,
        },
    }


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
