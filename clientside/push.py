"""One push, as sshd runs the client: read the request, load and check the config, run the
verb (``sync``, ``status``, ``version``), print one report. Every path, errors included, ends in
exactly one JSON report on stdout and the exit code it calls for."""

import logging
import signal
import sys
from datetime import datetime
from typing import Callable, Optional

from clientside import __version__, logsetup
from clientside.core import rsyncplan
from clientside.core.args import USAGE, Args
from clientside.core.config import Config, ConfigError, hub_first, order_sources
from clientside.paths import (
    REMOTE_FS,
    bind_state_dir,
    check_program,
    check_to,
    check_trusted,
    ensure_state_dir,
    fs_type,
    load_config,
    program_paths,
)
from clientside.runner import find_rsync, rsync_version
from clientside.verbs import status
from pushwire import report
from pushwire.report import Report
from pushwire.request import Request, RequestError, parse_request

Clock = Callable[[], datetime]


class Terminated(BaseException):
    """SIGTERM arrived: unwinds through the rsync runner, which kills rsync's process group."""


def _terminated(signum: int, frame: object) -> None:
    raise Terminated


class _Stop(Exception):
    """Ends the run early with an error in the report."""

    def __init__(self, status: str, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


def emit(rep: Report, now: Clock, started: datetime) -> int:
    """Print the report (finished now, unless it is already); return its exit code."""
    if rep.get("finished_at") is None:
        report.finish(rep, rep["status"], started, now())
    try:
        sys.stdout.write(report.render(rep) + "\n")
        sys.stdout.flush()
    except OSError:
        pass  # stdout is gone: the log has it all
    return report.exit_code(rep)


def reject_usage(message: str, logger: logging.Logger, now: Clock, started: datetime) -> int:
    """Report a command line we do not accept (exit 64)."""
    rep = report.new_report("sync", started, __version__, None)
    _fail(logger, rep, _Stop("rejected", "usage", f"{message}; {USAGE}"))
    return emit(rep, now, started)


def serve(
    args: Args,
    *,
    command: Optional[str],
    home: str,
    config_path: str,
    logger: logging.Logger,
    now: Clock,
    started: datetime,
) -> int:
    """Answer the request ``command`` (``SSH_ORIGINAL_COMMAND``) for ``args.source``."""
    rep = report.new_report("sync", started, __version__, None)
    rep["source_requested"] = args.source
    try:
        request = _request(command, rep)
        config = _config(args.source, config_path, home, logger)
        _check_hub(config, args.source or "", request)
        rsync = _find_rsync(config)
    except _Stop as stop:
        _fail(logger, rep, stop)
        return emit(rep, now, started)
    rep["warnings"].extend(config.warnings)
    if fs_type(config.state_dir) in REMOTE_FS:
        rep["warnings"].append(f"STATE_DIR {config.state_dir} is not on a local filesystem")
    for line in config.warnings:
        logger.warning("%s", line)
    rep["rsync_version"] = rsync_version(rsync, config.state_dir)
    warning = rsyncplan.version_warning(rep["rsync_version"])
    if warning:
        rep["warnings"].append(warning)
    source = args.source or ""
    logger.info("request %s from %s run-id %s", request.verb, source, request.run_id or "-")
    if request.verb == "version":
        rep["status"] = "ok"
        return emit(rep, now, started)
    if request.verb == "status":
        saved = status.last_report(config.state_dir)
        if saved is not None:
            _print(saved)
            return 0
        status.describe_served(rep, config)
        return emit(rep, now, started)
    if rsync is None:
        _fail(logger, rep, _Stop("failed", "config", "rsync not found (set RSYNC= in the config)"))
        return emit(rep, now, started)
    _sync(rep, request, config, source=source, home=home, rsync=rsync, logger=logger)
    report.finish(rep, rep["status"], started, now())
    if rep["status"] != "queued":
        try:
            status.save_report(config.state_dir, rep)
        except OSError as exc:
            rep["warnings"].append(f"cannot save the report: {exc.strerror}")
    logger.info("report: status %s", rep["status"])
    return emit(rep, now, started)


def _fail(logger: logging.Logger, rep: Report, stop: _Stop) -> None:
    logger.error("%s: %s", stop.kind, stop)
    rep["status"] = stop.status
    report.set_error(rep, stop.kind, str(stop))


def _print(text: str) -> None:
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except OSError:
        pass


def _request(command: Optional[str], rep: Report) -> Request:
    try:
        request = parse_request(command)
    except RequestError as exc:
        rep["verb"] = None
        raise _Stop("rejected", "rejected", f"request rejected: {exc}") from None
    rep["verb"] = request.verb
    rep["run_id"] = request.run_id
    return request


def _config(source: Optional[str], path: str, home: str, logger: logging.Logger) -> Config:
    """Load the config and check what it points at: nothing another local user could change
    (config, state directory, log, rsync), a state directory of this TO only."""
    try:
        config = load_config(path, home, source)
        logsetup.set_secrets(logger, [config.rsync_password or ""])
        order_sources(config.sources, source or "")
        check_to(config, home=home, config_path=path, program_paths=program_paths())
        ensure_state_dir(config.state_dir)
        _bind(config)
        if config.rsync:
            check_program(config.rsync, "RSYNC")
        check_trusted(config.log_file, "LOG_FILE")
        try:
            logsetup.add_file(logger, config.log_file, [config.rsync_password or ""])
        except OSError as exc:
            raise ConfigError(f"LOG_FILE {config.log_file}: {exc.strerror}") from None
    except ConfigError as exc:
        raise _Stop("failed", "config", str(exc)) from None
    return config


def _check_hub(config: Config, source: str, request: Request) -> None:
    """A push naming a hub (``source=``) is refused unless the hub is one of HUBS."""
    if request.source is None:
        return
    try:
        hub_first(config, source, request.source)
    except ConfigError as exc:
        raise _Stop("rejected", "rejected", f"request rejected: {exc}") from None


def _find_rsync(config: Config) -> Optional[str]:
    """Return the rsync to run, or None; an rsync another user could change is not run."""
    rsync = find_rsync(config)
    if rsync is not None and not config.rsync:  # RSYNC= was checked with the config
        try:
            check_program(rsync, "rsync")
        except ConfigError as exc:
            raise _Stop("failed", "config", str(exc)) from None
    return rsync


def _bind(config: Config) -> None:
    try:
        bind_state_dir(config.state_dir, config.to)
    except OSError as exc:
        raise ConfigError(f"STATE_DIR {config.state_dir}: {exc.strerror}") from None


def _sync(
    rep: Report,
    request: Request,
    config: Config,
    *,
    source: str,
    home: str,
    rsync: str,
    logger: logging.Logger,
) -> None:
    """Run the sync verb; a SIGTERM or a bug still leaves a report to print."""
    from clientside.verbs.sync import SyncContext, sync  # only a sync pays for its imports

    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        sync(SyncContext(config, request, source, home, rsync), rep)
    except Terminated:
        logger.warning("terminated: rsync stopped, nothing more published")
        rep["status"] = "failed"
        report.set_error(rep, "interrupted", "clam-clientsync was terminated (SIGTERM)")
    except Exception as exc:  # the report must still go out
        logger.exception("internal error")
        rep["status"] = "failed"
        report.set_error(rep, "internal", f"{type(exc).__name__}: {exc}")
    finally:
        signal.signal(signal.SIGTERM, previous)
