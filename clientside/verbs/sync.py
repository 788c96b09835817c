"""The ``sync`` verb: lock, rsync into staging (with failover), verify, publish, describe."""

import logging
import os
import shutil
import time
from typing import Dict, List, NamedTuple, Optional, Tuple

from clientside import publish, verification
from clientside.core import cvd, rsyncplan
from clientside.core.config import Config, Source, hub_first
from clientside.core.cvd import database_name
from clientside.core.publishplan import Entry
from clientside.core.rsyncplan import classify, parse_stats
from clientside.locking import SyncLock
from clientside.logsetup import redact
from clientside.runner import RunResult, run
from clientside.staging import TreeError, clean_stray_temps, prepare_staging, remove_partials
from pushwire.report import Report, attempt, set_error
from pushwire.request import Request

log = logging.getLogger("clam-clientsync")


class SyncContext(NamedTuple):
    config: Config
    request: Request
    source_requested: str
    home: str
    rsync: str


class RoundResult(NamedTuple):
    rsync_ok: bool
    error: Optional[Tuple[str, str]]


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
    while True:
        try:
            while True:
                lock.take_mark()
                rounds += 1
                _round(ctx, report, lock)
                if not (lock.mark_set() and rounds < ctx.config.max_rounds):
                    break
                log.info("a push arrived during the sync: going round again")
        finally:
            lock.release()
        if lock.mark_set() and rounds < ctx.config.max_rounds and lock.try_acquire():
            log.info("a push arrived as the sync ended: going round again")
            continue
        break
    report["rounds"] = rounds
    if lock.mark_set():
        report["warnings"].append(f"pushes still queued after {rounds} rounds (MAX_ROUNDS)")


def _round(ctx: SyncContext, report: Report, lock: SyncLock) -> None:
    cfg = ctx.config
    report["error"] = None
    report["source_used"] = None
    report["files_transferred"] = 0
    report["bytes_transferred"] = 0
    report["files_deleted"] = 0
    report["changes"] = []
    budget = float(min(cfg.deadline, ctx.request.deadline or cfg.deadline))
    started = time.monotonic()
    try:
        staging = prepare_staging(cfg.to, cfg.protect_patterns)
        stray = clean_stray_temps(cfg.to)
        if stray:
            log.info("removed %d temporary files of an interrupted publish", stray)
        verifier = verification.Verifier(cfg.state_dir)
        quarantined: Dict[str, verification.Finding] = {}
        result = _transfer(
            ctx,
            report=report,
            lock=lock,
            staging=staging,
            verifier=verifier,
            budget=budget,
            started=started,
            quarantined=quarantined,
        )
        errors: List[Tuple[str, str]] = []
        if result.rsync_ok:
            # what is (not) served now matters more than a later source's failure
            errors.extend(_publish(ctx, report, staging, verifier, quarantined))
        if result.error:
            errors.append(result.error)
        report["databases"] = verification.served_databases(verifier, cfg.to)
        report["cdiffs"], report["signs"] = verification.served_release_files(cfg.to)
        verifier.save()
    except TreeError as exc:
        errors = [(exc.kind, str(exc))]
    except OSError as exc:
        kind = "disk_full" if rsyncplan.disk_full_errno(exc.errno) else "publish_failed"
        errors = [(kind, f"{exc.filename or 'TO'}: {exc.strerror}")]
        _describe_anyway(ctx, report)
    if errors:
        kind, message = errors[0]
        set_error(report, kind, message)
        for other in errors[1:]:
            report["warnings"].append(f"{other[0]}: {other[1]}")
        report["status"] = "failed"
        log.error("sync failed: %s: %s", kind, message)
    else:
        report["status"] = "ok"
        log.info(
            "sync ok from %s: %d files transferred, %d deleted",
            report["source_used"],
            report["files_transferred"],
            report["files_deleted"],
        )


def _describe_anyway(ctx: SyncContext, report: Report) -> None:
    """After a failure, still tell what TO serves (best effort)."""
    try:
        report["databases"] = verification.served_databases(
            verification.Verifier(ctx.config.state_dir), ctx.config.to
        )
        report["cdiffs"], report["signs"] = verification.served_release_files(ctx.config.to)
    except OSError as exc:
        report["warnings"].append(f"cannot read TO: {exc.strerror}")


def _rsync_once(
    ctx: SyncContext,
    source: Source,
    staging: str,
    *,
    env: Dict[str, str],
    secrets: List[str],
    deadline_s: float,
    lock_fd: Optional[int],
    report: Report,
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
    output = redact(res.output, secrets)
    if res.group_survived:
        report["warnings"].append(f"{source.name}: a process of rsync's group outlived it")
    for line in rsyncplan.error_lines(output):
        log.warning("rsync: %s", line)
    return res, output


def _transfer(
    ctx: SyncContext,
    *,
    report: Report,
    lock: SyncLock,
    staging: str,
    verifier: verification.Verifier,
    budget: float,
    started: float,
    quarantined: Dict[str, verification.Finding],
) -> RoundResult:
    cfg = ctx.config
    secrets = [cfg.rsync_password or ""]
    last_error: Optional[Tuple[str, str]] = None
    rsync_ok = False
    lock_fd = lock.fd
    sources = hub_first(cfg, ctx.source_requested, ctx.request.source)
    for index, source in enumerate(sources):
        # a hub is another mirror: it never sees the password of the project's sources
        env = rsyncplan.build_env(ctx.home, None if source.hub else cfg.rsync_password)
        more = index + 1 < len(sources)
        remaining = budget - (time.monotonic() - started)
        if remaining <= 0:
            return RoundResult(rsync_ok, ("deadline", f"deadline of {budget:.0f}s reached"))
        # rsync's own --timeout is known to hang; a source that is not the last may use half of
        # what is left, so that a hung rsync1 still leaves time for rsync2
        res, output = _rsync_once(
            ctx,
            source,
            staging,
            env=env,
            secrets=secrets,
            deadline_s=remaining / 2 if more else remaining,
            lock_fd=lock_fd,
            report=report,
        )
        if res.deadline_hit:
            message = f"rsync killed at our deadline after {res.duration_s:.1f}s"
            report["attempts"].append(attempt(source.name, None, res.duration_s, message))
            log.warning("rsync from %s: %s", source.name, message)
            last_error = ("deadline", f"{source.name}: {message}")
            if more:
                continue
            return RoundResult(rsync_ok, last_error)
        exit_code = res.exit_code if res.exit_code is not None else -1
        outcome = classify(exit_code, output)
        if outcome.verdict != "ok":
            message = f"{outcome.kind}: {outcome.message}"
            report["attempts"].append(attempt(source.name, exit_code, res.duration_s, message))
            last_error = (outcome.kind or "rsync_failed", f"{source.name}: {outcome.message}")
            log.warning("rsync from %s failed (exit %d): %s", source.name, exit_code, message)
            if outcome.failover and more:
                continue
            return RoundResult(rsync_ok, last_error)
        rsync_ok = True
        if exit_code == 24:
            report["warnings"].append(f"{source.name}: {outcome.message}")
        _record_stats(report, output)
        bad = _verify(ctx, staging, verifier, source)[2]
        if bad:
            quarantine(staging, bad, quarantined)
            kind = bad[0].verdict.kind or "corrupt_cvd"
            message = "; ".join(f.verdict.message for f in bad)
            report["attempts"].append(
                attempt(source.name, exit_code, res.duration_s, f"{kind}: {message}")
            )
            last_error = (kind, f"{source.name}: {message}")
            log.warning("verification after rsync from %s: %s", source.name, message)
            if more:
                continue
            report["source_used"] = source.name
            return RoundResult(rsync_ok, None)  # the publish step reports the failures
        report["attempts"].append(attempt(source.name, exit_code, res.duration_s, None))
        report["source_used"] = source.name
        return RoundResult(rsync_ok, None)
    return RoundResult(rsync_ok, None if rsync_ok else last_error)


def _record_stats(report: Report, output: str) -> None:
    stats = parse_stats(output)
    report["files_transferred"] = stats.files_transferred or 0
    report["bytes_transferred"] = stats.bytes_received or 0
    report["changes"] = rsyncplan.itemized(output, 50)
    for line in report["changes"]:
        log.info("rsync: %s", line)


def _verify(
    ctx: SyncContext, staging: str, verifier: verification.Verifier, source: Optional[Source]
) -> Tuple[Dict[str, Entry], Dict[str, Entry], List[verification.Finding]]:
    """Return what is staged, what is served, and the staged CVDs that may not be published.
    What a hub (`source`) handed over must also match the request's md5 pins."""
    cfg = ctx.config
    _plan, staged, served = publish.plan(cfg.to, staging, cfg.protect_patterns, frozenset())
    findings = verification.verify_staging(
        verifier,
        staging=staging,
        to=cfg.to,
        staged=staged,
        served=served,
        expect=ctx.request.expect,
        pins=ctx.request.pins if source is not None and source.hub else {},
    )
    return staged, served, [f for f in findings if not f.verdict.ok]


def _publish(
    ctx: SyncContext,
    report: Report,
    staging: str,
    verifier: verification.Verifier,
    quarantined: Dict[str, verification.Finding],
) -> List[Tuple[str, str]]:
    cfg = ctx.config
    used = [h for h in cfg.hubs if h.name == report["source_used"]]
    staged, served, bad = _verify(ctx, staging, verifier, used[0] if used else None)
    bad += [
        verification.Finding(
            p,
            cvd.Verdict(False, f.verdict.kind, f"{f.verdict.message} (corrupt at the source)"),
        )
        for p, f in sorted(quarantined.items())
        if p not in staged
    ]
    errors: List[Tuple[str, str]] = [
        (f.verdict.kind or "corrupt_cvd", f.verdict.message + " (not published)") for f in bad
    ]
    staged_dbs = [p for p in staged if "/" not in p and database_name(p)]
    served_dbs = [p for p in served if "/" not in p and database_name(p)]
    if not staged_dbs and served_dbs:
        errors.insert(0, ("empty_source", "the source has no databases; nothing published"))
        return errors
    plan_ = publish.plan_publish_from(staged, served, cfg.protect_patterns, bad)
    done = publish.execute(plan_, cfg.to, staging, cfg.max_delete, cfg.protect_patterns)
    report["files_deleted"] = done.deleted
    log.info("published %d files, deleted %d", done.published, done.deleted)
    for path in plan_.held_back:
        log.warning("held back (failed verification): %s", path)
    for warning in done.warnings:
        log.warning("held back: %s", warning)
    report["warnings"].extend(done.warnings)
    errors.extend(("disk_full" if p in done.full else "publish_failed", p) for p in done.problems)
    return errors


def _display(source: Source) -> str:
    port = f":{source.port}" if source.port is not None else ""
    return f"rsync://{source.host}{port}"


def quarantine(
    staging: str, bad: List[verification.Finding], quarantined: Dict[str, verification.Finding]
) -> None:
    """Remove corrupt files from staging, so that the next source (or run) sends them whole:
    rsync's quick check (size and time) would otherwise keep a corrupt copy forever. A file held
    back as incoherent (a version past its CVD) stays: it is whole, only early."""
    for finding in bad:
        if finding.verdict.kind in ("corrupt_cvd", "corrupt_file"):
            path = os.path.join(staging, finding.path)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)  # a directory under a database name
                quarantined[finding.path] = finding
            elif os.path.lexists(path):
                os.unlink(path)
                quarantined[finding.path] = finding
