"""One push, as sshd runs the client: read the request, load and check the config, run the
verb (``sync``, ``status``, ``version``), print one report. Every path, errors included, ends in
exactly one JSON report on stdout and the exit code it calls for.

That holds by construction: the run's one ``Reply`` is the only writer of stdout, writes at most
once, and the entry (``clientside.cli``) hands any exception it did not expect to
``Reply.internal_error``, which still answers (status ``failed``, error kind ``internal``),
logs the traceback, and exits 1."""

import json
import logging
import signal
import sys
import traceback
from datetime import datetime
from typing import Callable, Dict, List, Optional, Tuple

from clientside import __version__, logsetup
from clientside.configfile import check_to, load_config, program_paths
from clientside.core import rsyncplan
from clientside.core.args import USAGE, Args
from clientside.core.config import Config, ConfigError, hub_first, order_sources
from clientside.core.mounts import REMOTE_FS
from clientside.fsutil import fs_type
from clientside.runner import find_rsync, rsync_version
from clientside.statedir import bind_state_dir, ensure_state_dir
from clientside.trust import check_program, check_trusted
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


MESSAGE_LIMIT = 1000  # characters of an internal error's message in the report


class Reply:
    """The one answer of a run: the report being built, and whether an answer has gone out.

    ``owed`` is False on the paths that answer in text (``--help``, ``--version``, ``doctor``):
    there an unexpected exception is one line on stderr, not a report."""

    def __init__(self, started: datetime, now: Clock) -> None:
        self.started = started
        self.now = now
        self.report = report.new_report("sync", started, __version__, None)
        self.owed = True
        self.sent = False
        self.code = report.EXIT_FAILURE
        self.secrets: List[str] = []  # redacted from an internal error's message
        self.state_dir: Optional[str] = None  # where a failed sync's report is kept

    def emit(self, rep: Report) -> int:
        """Print ``rep`` (finished now, unless it is already) unless an answer went out
        already; return its exit code."""
        if rep.get("finished_at") is None:
            report.finish(rep, rep["status"], self.started, self.now())
        return self._send(report.render(rep), report.exit_code(rep))

    def print_saved(self, text: str) -> int:
        """Print a saved report verbatim (``status``); return 0."""
        return self._send(text, report.EXIT_OK)

    def _send(self, line: str, code: int) -> int:
        if self.sent:
            return self.code
        self.sent, self.code = True, code  # one attempt, whatever happens to it
        try:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except OSError:
            pass  # stdout is gone: the log has it all
        return code

    def internal_error(self, exc: BaseException, logger: logging.Logger) -> int:
        """Answer after ``exc``, which nothing expected: log it (a bug: with its traceback),
        keep the report as the last one (a sync), print it unless an answer went out already;
        return the exit code of what was printed. An OSError of a full disk (space, inodes,
        quota), wherever it came from, is ``disk_full``; anything else is ``internal``."""
        kind, message = self._describe(exc)
        if kind == "internal":
            _log_traceback(logger, exc)
        else:
            logger.error("%s: %s", kind, message)
        if not self.owed:
            _stderr(f"clam-clientsync: {message}")
            return report.EXIT_FAILURE
        if self.sent:
            return self.code
        rep = self.report
        try:
            line = self._failed(rep, kind, message)
        except Exception:  # the report itself is what broke: a new one
            rep = report.new_report("sync", self.started, __version__, None)
            try:
                line = self._failed(rep, kind, message)
            except Exception:  # so is the code that renders it: the contract, by hand
                return self._send(_last_resort(self.started, kind, message), 1)
        if self.state_dir is not None and rep["verb"] == "sync":
            try:
                status.save_report(self.state_dir, rep)
            except Exception as save_exc:  # the answer matters more than what status shows
                logger.warning("cannot save the report: %s", save_exc)
        return self._send(line, report.exit_code(rep))

    def _failed(self, rep: Report, kind: str, message: str) -> str:
        previous = rep.get("error")
        if previous:
            rep["warnings"].append(f"{previous['kind']}: {previous['message']}")
        report.set_error(rep, kind, message)
        report.finish(rep, "failed", self.started, self.now())
        return report.render(rep)

    def _describe(self, exc: BaseException) -> Tuple[str, str]:
        """Return the error kind and the one-line message (secrets redacted, bounded)."""
        try:
            text = str(exc)
        except Exception:
            text = "(its message cannot be shown)"
        if isinstance(exc, OSError) and rsyncplan.disk_full_errno(exc.errno):
            where = f"{exc.filename}: " if exc.filename else ""
            kind, message = "disk_full", f"{where}{exc.strerror}"
        else:
            kind, message = "internal", f"{type(exc).__name__}: {text}"
        message = logsetup.redact(message, self.secrets)
        if len(message) > MESSAGE_LIMIT:
            message = message[: MESSAGE_LIMIT - 3] + "..."
        if kind == "internal":
            message = "internal error: " + message + " (a bug: the traceback is in the log)"
        return kind, message


def _last_resort(started: datetime, kind: str, message: str) -> str:
    """Return a failed report with every contract key, built without ``pushwire.report``."""
    stamp = started.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    error = {"kind": kind, "message": message, "retryable": False}
    keys: Dict[str, object] = {
        **dict.fromkeys(report.KEYS),
        "report_version": report.REPORT_VERSION,
        "status": "failed",
        "verb": "sync",
        "attempts": [],
        "started_at": stamp,
        "finished_at": stamp,
        "duration_s": 0.0,
        "files_transferred": 0,
        "bytes_transferred": 0,
        "files_deleted": 0,
        "changes": [],
        "databases": {},
        "error": error,
        "warnings": [],
        "client_version": __version__,
    }
    return json.dumps(keys, separators=(",", ":"), ensure_ascii=True)


def _log_traceback(logger: logging.Logger, exc: BaseException) -> None:
    """Log ``exc`` with its traceback, a line per record (the log's lines are one line each)."""
    try:
        lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
        logger.error("internal error: %s: %s", type(exc).__name__, exc)
        for line in "".join(lines).splitlines():
            logger.error("%s", line)
    except Exception:  # a logger that fails: stderr still tells
        _stderr("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))


def _stderr(text: str) -> None:
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def reject_usage(message: str, logger: logging.Logger, reply: Reply) -> int:
    """Report a command line we do not accept (exit 64)."""
    rep = reply.report
    _fail(logger, rep, _Stop("rejected", "usage", f"{message}; {USAGE}"))
    return reply.emit(rep)


def serve(
    args: Args,
    *,
    command: Optional[str],
    home: str,
    config_path: str,
    logger: logging.Logger,
    reply: Reply,
) -> int:
    """Answer the request ``command`` (``SSH_ORIGINAL_COMMAND``) for ``args.source``."""
    rep = reply.report
    rep["source_requested"] = args.source
    try:
        request = _request(command, rep)
        config = _config(args.source, config_path, home, logger, reply)
        _check_hub(config, args.source or "", request)
        rsync = _find_rsync(config)
    except _Stop as stop:
        _fail(logger, rep, stop)
        return reply.emit(rep)
    rep["warnings"].extend(config.warnings)
    _maintenance(rep, config, reply.now())
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
        return reply.emit(rep)
    if request.verb == "status":
        saved = status.last_report(config.state_dir)
        if saved is not None:
            return reply.print_saved(status.with_maintenance(saved, rep.get("maintenance")))
        status.describe_served(rep, config)
        return reply.emit(rep)
    if rsync is None:
        _fail(logger, rep, _Stop("failed", "config", "rsync not found (set RSYNC= in the config)"))
        return reply.emit(rep)
    reply.state_dir = config.state_dir
    _sync(rep, request, config, source=source, home=home, rsync=rsync, logger=logger, now=reply.now)
    report.finish(rep, rep["status"], reply.started, reply.now())
    if rep["status"] != "queued":
        try:
            status.save_report(config.state_dir, rep)
        except OSError as exc:
            rep["warnings"].append(f"cannot save the report: {exc.strerror}")
    logger.info("report: status %s", rep["status"])
    return reply.emit(rep)


def _maintenance(rep: Report, config: Config, now: datetime) -> None:
    """Every report carries the maintenance notice TO serves (None: none announced)."""
    from clientside.verbs.maintenance import report_value

    rep["maintenance"], problem = report_value(config.to, now.timestamp())
    if problem:
        rep["warnings"].append(problem)


def _fail(logger: logging.Logger, rep: Report, stop: _Stop) -> None:
    logger.error("%s: %s", stop.kind, stop)
    rep["status"] = stop.status
    report.set_error(rep, stop.kind, str(stop))


def _request(command: Optional[str], rep: Report) -> Request:
    try:
        request = parse_request(command)
    except RequestError as exc:
        rep["verb"] = None
        raise _Stop("rejected", "rejected", f"request rejected: {exc}") from None
    rep["verb"] = request.verb
    rep["run_id"] = request.run_id
    return request


def _config(
    source: Optional[str], path: str, home: str, logger: logging.Logger, reply: Reply
) -> Config:
    """Load the config and check what it points at: nothing another local user could change
    (config, state directory, log, rsync), a state directory of this TO only."""
    try:
        config = load_config(path, home, source)
        reply.secrets = [config.rsync_password or ""]
        logsetup.set_secrets(logger, reply.secrets)
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
    now: Clock,
) -> None:
    """Run the sync verb; a SIGTERM still leaves a report to print (a bug too: the entry's
    boundary answers with ``rep``, see ``Reply``)."""
    from clientside.verbs.sync import SyncContext, sync  # only a sync pays for its imports

    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        sync(SyncContext(config, request, source, home, rsync, now), rep)
    except Terminated:
        logger.warning("terminated: rsync stopped, nothing more published")
        rep["status"] = "failed"
        report.set_error(rep, "interrupted", "clam-clientsync was terminated (SIGTERM)")
    finally:
        signal.signal(signal.SIGTERM, previous)
