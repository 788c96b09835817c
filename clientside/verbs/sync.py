"""The ``sync`` verb: lock, rsync into staging (with failover), verify, publish, describe.

A round returns what it found (``core.syncround.RoundResult``), written into the report in one
place. The staging tree is verified once per source whose rsync succeeds; the publish uses that
verification unless a later source's rsync changed the tree."""

import logging
import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from clientside import accesslog, homepage, publish, verification
from clientside.core import cvd, rsyncplan
from clientside.core.config import Config, Source, hub_first
from clientside.core.cvd import database_name
from clientside.core.rsyncplan import classify, parse_stats
from clientside.core.stagedtree import Finding, StagedTree
from clientside.core.syncround import RoundResult, TransferStats, report_round
from clientside.locking import SyncLock
from clientside.logsetup import redact
from clientside.runner import RunResult, run
from clientside.staging import (
    TreeError,
    clean_stray_temps,
    prepare_staging,
    quarantine,
    remove_partials,
)
from pushwire.report import Attempt, CdiffSpan, Database, Report, attempt
from pushwire.request import Request

log = logging.getLogger("clam-clientsync")

Error = Tuple[str, str]  # (kind, message)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class SyncContext(NamedTuple):
    config: Config
    request: Request
    source_requested: str
    home: str
    rsync: str
    now: Callable[[], datetime] = _utcnow  # the clock of the home page's "served since"


class _Found:
    """What the running round has found so far; ``result`` freezes it (also for a round an
    exception breaks off: what it found is still told)."""

    def __init__(self) -> None:
        self.source_used: Optional[str] = None
        self.attempts: List[Attempt] = []
        self.stats = TransferStats()
        self.files_deleted = 0
        self.databases: Optional[Dict[str, Database]] = None
        self.release_files: Optional[Tuple[Dict[str, CdiffSpan], List[str]]] = None
        self.warnings: List[str] = []
        # a hub's rsync ran into staging this round: whatever is published is judged with the
        # push's pins, whichever source ran last (a forged file may outlive a failed source)
        self.hub_wrote = False

    def result(self, errors: Sequence[Error] = (), *, ended: bool = True) -> RoundResult:
        return RoundResult(
            source_used=self.source_used,
            attempts=tuple(self.attempts),
            stats=self.stats,
            files_deleted=self.files_deleted,
            databases=self.databases,
            release_files=self.release_files,
            warnings=tuple(self.warnings),
            errors=tuple(errors),
            ended=ended,
        )


class _Transfer(NamedTuple):
    rsync_ok: bool  # a source's rsync succeeded: staging holds something to publish
    error: Optional[Error]
    tree: Optional[StagedTree]  # staging as last verified; None when an rsync ran after that
    quarantined: Dict[str, Finding]


def sync(ctx: SyncContext, report: Report) -> None:
    """Run the sync verb, filling ``report`` (status, attempts, databases, error)."""
    lock = SyncLock(ctx.config.state_dir)
    if not lock.try_acquire():
        lock.set_mark(ctx.request.run_id)
        # the holder may have released between our try and the mark: try once more
        if not lock.try_acquire():
            log.info("another sync is running: update queued for it")
            report["status"] = "queued"
            return
    rounds = 0
    counted = False
    while True:
        try:
            while True:
                lock.take_mark()
                rounds += 1
                _run_round(ctx, report, lock)
                if not (lock.mark_set() and rounds < ctx.config.max_rounds):
                    break
                log.info("a push arrived during the sync: going round again")
            if not counted:  # under the lock: two syncs never count the same lines
                counted = True
                _count_traffic(ctx.config, report)
        finally:
            lock.release()
        if lock.mark_set() and rounds < ctx.config.max_rounds and lock.try_acquire():
            log.info("a push arrived as the sync ended: going round again")
            continue
        break
    report["rounds"] = rounds
    if lock.mark_set():
        report["warnings"].append(f"pushes still queued after {rounds} rounds (MAX_ROUNDS)")


def _count_traffic(config: Config, report: Report) -> None:
    """Add what the web server served since the last report (ACCESS_LOG=, when set)."""
    if config.access_log is None:
        return
    figures, warnings = accesslog.read_traffic(
        config.state_dir, config.access_log, reported_at=report["started_at"]
    )
    report["warnings"].extend(warnings)
    if figures is not None:
        report["traffic"] = figures


def _run_round(ctx: SyncContext, report: Report, lock: SyncLock) -> None:
    """Run one round and write what it found into ``report``."""
    found = _Found()
    try:
        result = _round(ctx, lock, found)
    except BaseException:
        report_round(report, found.result(ended=False))
        raise
    told = set(report["warnings"])  # a later round's page tells nothing the first did not
    kept = [w for w in result.warnings if not (w.startswith(homepage.WARNING_PREFIX) and w in told)]
    report_round(report, replace(result, warnings=tuple(kept)))
    if result.errors:
        log.error("sync failed: %s: %s", *result.errors[0])
    else:
        log.info(
            "sync ok from %s: %d files transferred, %d deleted",
            result.source_used,
            result.stats.files_transferred,
            result.files_deleted,
        )


def _round(ctx: SyncContext, lock: SyncLock, found: _Found) -> RoundResult:
    cfg = ctx.config
    budget = float(min(cfg.deadline, ctx.request.deadline or cfg.deadline))
    started = time.monotonic()
    errors: List[Error] = []
    try:
        staging = prepare_staging(cfg.to, cfg.protect_patterns)
        stray = clean_stray_temps(cfg.to)
        if stray:
            log.info("removed %d temporary files of an interrupted publish", stray)
        verifier = verification.Verifier(cfg.state_dir)
        transfer = _transfer(
            ctx,
            found,
            lock=lock,
            staging=staging,
            verifier=verifier,
            budget=budget,
            started=started,
        )
        if transfer.rsync_ok:
            # what is (not) served now matters more than a later source's failure
            errors.extend(_publish(ctx, found, staging, verifier, transfer))
        if transfer.error:
            errors.append(transfer.error)
        _describe_served(found, verifier, cfg.to)
        # after the databases, in the same round: the page never shows what is not served
        found.warnings.extend(homepage.write_page(cfg, found.databases or {}, ctx.now()))
        verifier.save()
    except TreeError as exc:
        errors = [(exc.kind, str(exc))]
    except OSError as exc:
        kind = "disk_full" if rsyncplan.disk_full_errno(exc.errno) else "publish_failed"
        errors = [(kind, f"{exc.filename or 'TO'}: {exc.strerror}")]
        try:  # after a failure, still tell what TO serves (best effort)
            _describe_served(found, verification.Verifier(cfg.state_dir), cfg.to)
        except OSError as exc:
            found.warnings.append(f"cannot read TO: {exc.strerror}")
    return found.result(errors)


def _describe_served(found: _Found, verifier: verification.Verifier, to: str) -> None:
    found.databases = verification.served_databases(verifier, to)
    found.release_files = verification.served_release_files(to)


def _rsync_once(
    ctx: SyncContext,
    found: _Found,
    source: Source,
    staging: str,
    *,
    env: Dict[str, str],
    deadline_s: float,
    lock_fd: Optional[int],
) -> Tuple[RunResult, str]:
    """One rsync from `source` into staging; what it leaves half-written is removed. Return
    its result and its redacted output."""
    cfg = ctx.config
    argv = rsyncplan.build_argv(
        ctx.rsync,
        rsyncplan.source_url(source, cfg.module, cfg.rsync_user),
        staging,
        patterns=cfg.protect_patterns,
        max_delete=cfg.max_delete,
        timeout=cfg.timeout,
        contimeout=cfg.contimeout,
    )
    log.info("rsync from %s (%s)", source.name, _display(source))
    res = run(
        argv,
        env,
        deadline_s=deadline_s,
        work_dir=cfg.state_dir,
        pass_fds=[lock_fd] if lock_fd is not None else [],
    )
    remove_partials(staging)  # a failed or killed rsync leaves them (a full disk stays full)
    output = redact(res.output, [cfg.rsync_password or ""])
    if res.group_survived:
        found.warnings.append(f"{source.name}: a process of rsync's group outlived it")
    for line in rsyncplan.error_lines(output):
        log.warning("rsync: %s", line)
    return res, output


def _transfer(
    ctx: SyncContext,
    found: _Found,
    *,
    lock: SyncLock,
    staging: str,
    verifier: verification.Verifier,
    budget: float,
    started: float,
) -> _Transfer:
    """Rsync from each source in turn until one's tree verifies (or none is left); verify the
    staging tree once after each rsync that succeeds."""
    cfg = ctx.config
    last_error: Optional[Error] = None
    rsync_ok = False
    tree: Optional[StagedTree] = None
    quarantined: Dict[str, Finding] = {}
    sources = hub_first(cfg, ctx.source_requested, ctx.request.source)
    for index, source in enumerate(sources):
        # a hub is another mirror: it never sees the password of the project's sources
        env = rsyncplan.build_env(ctx.home, None if source.hub else cfg.rsync_password)
        more = index + 1 < len(sources)
        remaining = budget - (time.monotonic() - started)
        if remaining <= 0:
            deadline = ("deadline", f"deadline of {budget:.0f}s reached")
            return _Transfer(rsync_ok, deadline, tree, quarantined)
        # rsync's own --timeout is known to hang; a source that is not the last may use half of
        # what is left, so that a hung rsync1 still leaves time for rsync2
        res, output = _rsync_once(
            ctx,
            found,
            source,
            staging,
            env=env,
            deadline_s=remaining / 2 if more else remaining,
            lock_fd=lock.fd,
        )
        tree = None  # what was verified before this rsync is not what staging holds now
        found.hub_wrote = found.hub_wrote or source.hub
        if res.deadline_hit:
            message = f"rsync killed at our deadline after {res.duration_s:.1f}s"
            found.attempts.append(attempt(source.name, None, res.duration_s, message))
            log.warning("rsync from %s: %s", source.name, message)
            last_error = ("deadline", f"{source.name}: {message}")
            if more:
                continue
            return _Transfer(rsync_ok, last_error, tree, quarantined)
        exit_code = res.exit_code if res.exit_code is not None else -1
        judged = classify(exit_code, output)
        if judged.verdict != "ok":
            message = f"{judged.kind}: {judged.message}"
            found.attempts.append(attempt(source.name, exit_code, res.duration_s, message))
            last_error = (judged.kind or "rsync_failed", f"{source.name}: {judged.message}")
            log.warning("rsync from %s failed (exit %d): %s", source.name, exit_code, message)
            if judged.failover and more:
                continue
            return _Transfer(rsync_ok, last_error, tree, quarantined)
        rsync_ok = True
        if exit_code == 24:
            found.warnings.append(f"{source.name}: {judged.message}")
        found.stats = _stats(output)
        tree = verification.verify_staging(
            verifier,
            staging=staging,
            to=cfg.to,
            expect=ctx.request.expect,
            pins=_pins(ctx, source),
        )
        bad = tree.bad()
        if bad:
            tree = tree.without(quarantine(staging, bad, quarantined))
            kind = bad[0].verdict.kind or "corrupt_cvd"
            message = "; ".join(f.verdict.message for f in bad)
            found.attempts.append(
                attempt(source.name, exit_code, res.duration_s, f"{kind}: {message}")
            )
            last_error = (kind, f"{source.name}: {message}")
            log.warning("verification after rsync from %s: %s", source.name, message)
            if more:
                continue
            found.source_used = source.name
            return _Transfer(rsync_ok, None, tree, quarantined)  # the publish reports them
        found.attempts.append(attempt(source.name, exit_code, res.duration_s, None))
        found.source_used = source.name
        return _Transfer(rsync_ok, None, tree, quarantined)
    return _Transfer(rsync_ok, None if rsync_ok else last_error, tree, quarantined)


def _stats(output: str) -> TransferStats:
    stats = parse_stats(output)
    changes = rsyncplan.itemized(output, 50)
    for line in changes:
        log.info("rsync: %s", line)
    return TransferStats(stats.files_transferred or 0, stats.bytes_received or 0, tuple(changes))


def _pins(ctx: SyncContext, source: Optional[Source], hub_wrote: bool = False) -> Mapping[str, str]:
    """What a hub (`source`) hands over must also match the request's md5 pins; so must what
    is published after any hub wrote into staging (`hub_wrote`)."""
    return ctx.request.pins if hub_wrote or (source is not None and source.hub) else {}


def _publish(
    ctx: SyncContext,
    found: _Found,
    staging: str,
    verifier: verification.Verifier,
    transfer: _Transfer,
) -> List[Error]:
    cfg = ctx.config
    used = [h for h in cfg.hubs if h.name == found.source_used]
    pins = _pins(ctx, used[0] if used else None, found.hub_wrote)
    if transfer.tree is None:  # a later source's rsync failed after changing staging
        tree = verification.verify_staging(
            verifier, staging=staging, to=cfg.to, expect=ctx.request.expect, pins=pins
        )
    else:
        tree = transfer.tree.under(pins)
    staged, served, bad = tree.staged, tree.served, tree.bad()
    bad += [
        Finding(
            p,
            cvd.Verdict(False, f.verdict.kind, f"{f.verdict.message} (corrupt at the source)"),
        )
        for p, f in sorted(transfer.quarantined.items())
        if p not in staged
    ]
    errors: List[Error] = [
        (f.verdict.kind or "corrupt_cvd", f.verdict.message + " (not published)") for f in bad
    ]
    staged_dbs = [p for p in staged if "/" not in p and database_name(p)]
    served_dbs = [p for p in served if "/" not in p and database_name(p)]
    if not staged_dbs and served_dbs:
        errors.insert(0, ("empty_source", "the source has no databases; nothing published"))
        return errors
    plan_ = publish.plan_publish_from(staged, served, cfg.protect_patterns, bad)
    done = publish.execute(plan_, cfg.to, staging, cfg.max_delete, cfg.protect_patterns)
    found.files_deleted = done.deleted
    log.info("published %d files, deleted %d", done.published, done.deleted)
    for path in plan_.held_back:
        log.warning("held back (failed verification): %s", path)
    for warning in done.warnings:
        log.warning("held back: %s", warning)
    found.warnings.extend(done.warnings)
    errors.extend(("disk_full" if p in done.full else "publish_failed", p) for p in done.problems)
    return errors


def _display(source: Source) -> str:
    port = f":{source.port}" if source.port is not None else ""
    return f"rsync://{source.host}{port}"
