"""Command line entry point of clam-clientsync: parse, dispatch, print one report, exit."""

import contextlib
import json
import logging
import os
import pwd
import shutil
import signal
import sys
from datetime import datetime, timezone
from typing import Callable, Dict, List, NamedTuple, Optional

from clientside import __version__, logsetup, rsyncplan
from clientside.config import Config, ConfigError, build_config, order_sources, parse_config_text
from clientside.fsutil import atomic_write, read_small
from clientside.paths import (
    REMOTE_FS,
    check_config_file_mode,
    check_to,
    ensure_state_dir,
    fs_type,
)
from pushwire import report
from pushwire.report import Report
from pushwire.request import Request, RequestError, parse_request

USAGE = (
    "usage: clam-clientsync [--config PATH] SOURCE | clam-clientsync --doctor [--config PATH]"
    " | clam-clientsync setup --help"
)
DEFAULT_CONFIG = "~/etc/clam-clientsync.conf"
LAST_REPORT = "last-report.json"
RSYNC_VERSION_CACHE = "rsync-version.json"


class UsageError(Exception):
    pass


class Args(NamedTuple):
    config: Optional[str]
    source: Optional[str]
    doctor: bool
    help: bool
    version: bool
    home: Optional[str] = None  # --home DIR: for tests and packaging


def parse_args(argv: List[str]) -> Args:
    """Given argv (without the program), return Args; raise UsageError."""
    valued: Dict[str, Optional[str]] = {"--config": None, "--home": None}
    flags = {"--doctor": False, "--help": False, "--version": False}
    positional: List[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in valued:
            if not eq:
                if i + 1 >= len(argv):
                    raise UsageError(f"{arg} needs a PATH")
                value = argv[i + 1]
                i += 1
            valued[name] = value
        elif arg in flags or arg == "-h":
            flags["--help" if arg == "-h" else arg] = True
        elif arg.startswith("-"):
            raise UsageError(f"unknown option {arg[:40]!r}")
        else:
            positional.append(arg)
        i += 1
    doctor, helps, version = flags["--doctor"], flags["--help"], flags["--version"]
    if positional[:1] == ["doctor"]:
        doctor = True
        positional = positional[1:]
    if len(positional) > 1:
        raise UsageError("only one SOURCE may be given")
    if not (doctor or helps or version) and not positional:
        raise UsageError("SOURCE is missing")
    source = positional[0] if positional else None
    return Args(valued["--config"], source, doctor, helps, version, valued["--home"])


def home_dir() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_dir
    except KeyError:
        return os.environ.get("HOME", "/")


def config_path(args: Args, home: str) -> str:
    path = args.config or DEFAULT_CONFIG
    if path.startswith("~/"):
        path = home.rstrip("/") + path[1:]
    return os.path.abspath(path)


def load_config(path: str, home: str, source: Optional[str]) -> Config:
    """Read, parse and check the config at ``path``; raise ConfigError with one clear line."""
    data = read_small(path, 64 * 1024)
    if data is None:
        raise ConfigError(f"config {path} not found")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config {path} is not UTF-8 text") from None
    config = build_config(parse_config_text(text), home=home, requested_source=source)
    check_config_file_mode(path, config.rsync_password is not None)
    return config


def program_paths() -> List[str]:
    paths = [os.path.realpath(sys.argv[0])] if sys.argv and sys.argv[0] else []
    package = os.path.dirname(os.path.realpath(__file__))
    # inside a zipapp, __file__ is ARCHIVE/clientside/cli.py
    paths.append(os.path.dirname(package) if package.endswith(".pyz/clientside") else package)
    return paths


def find_rsync(config: Optional[Config]) -> Optional[str]:
    if config is not None and config.rsync:
        return config.rsync if os.access(config.rsync, os.X_OK) else None
    return shutil.which("rsync", path=rsyncplan.SAFE_PATH)


def rsync_version(rsync: Optional[str], state_dir: Optional[str]) -> Optional[str]:
    """Return the installed rsync's version, cached per binary in the state directory."""
    if rsync is None:
        return None
    try:
        st = os.stat(rsync)
    except OSError:
        return None
    key = f"{rsync}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
    cache = os.path.join(state_dir, RSYNC_VERSION_CACHE) if state_dir else None
    if cache:
        raw = read_small(cache)
        try:
            cached = json.loads(raw) if raw else None
        except ValueError:
            cached = None
        if isinstance(cached, dict) and cached.get("key") == key:
            version = cached.get("version")
            return version if isinstance(version, str) else None
    from clientside.runner import capture

    version = rsyncplan.parse_version(
        capture([rsync, "--version"], rsyncplan.build_env("/", None)) or ""
    )
    if cache and version:
        with contextlib.suppress(OSError):
            atomic_write(
                cache, json.dumps({"key": key, "version": version}).encode(), durable=False
            )
    return version


def emit(rep: Report, now: Callable[[], datetime], started: datetime) -> int:
    if rep.get("finished_at") is None:
        report.finish(rep, rep["status"], started, now())
    try:
        sys.stdout.write(report.render(rep) + "\n")
        sys.stdout.flush()
    except OSError:
        pass  # stdout is gone: the log has it all
    return report.exit_code(rep)


def main(argv: Optional[List[str]] = None) -> int:
    def now() -> datetime:
        return datetime.now(timezone.utc)

    started = now()
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] == ["setup"] or "--setup" in args_list:
        from clientside.setup import run_setup

        rest = args_list[1:] if args_list[:1] == ["setup"] else args_list
        return run_setup([a for a in rest if a != "--setup"], home_dir())
    logger = logsetup.setup([])
    try:
        return _main(args_list, logger, now, started)
    finally:
        logsetup.close(logger)


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


def _main(
    argv: List[str], logger: logging.Logger, now: Callable[[], datetime], started: datetime
) -> int:
    command = os.environ.get("SSH_ORIGINAL_COMMAND")
    rep = report.new_report("sync", started, __version__, None)
    try:
        args = parse_args(argv)
        if args.help:
            print(USAGE)
            return 0
        if args.version and command is None:
            print(__version__)
            return 0
        home = os.path.abspath(args.home) if args.home else home_dir()
        path = config_path(args, home)
        if args.doctor:
            from clientside.doctor import doctor

            return doctor(path, home, args.source, program_paths())
        rep["source_requested"] = args.source
        request = _request(command, rep)
        config = _config(args, path, home, logger)
    except UsageError as exc:
        _fail(logger, rep, _Stop("rejected", "usage", f"{exc}; {USAGE}"))
        return emit(rep, now, started)
    except _Stop as stop:
        _fail(logger, rep, stop)
        return emit(rep, now, started)
    return _run_verb(
        rep,
        request=request,
        config=config,
        source=args.source or "",
        home=home,
        logger=logger,
        now=now,
        started=started,
    )


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


def _config(args: Args, path: str, home: str, logger: logging.Logger) -> Config:
    try:
        config = load_config(path, home, args.source)
        logsetup.set_secrets(logger, [config.rsync_password or ""])
        order_sources(config.sources, args.source or "")
        check_to(config, home=home, config_path=path, program_paths=program_paths())
        ensure_state_dir(config.state_dir)
        logsetup.add_file(logger, config.log_file, [config.rsync_password or ""])
    except ConfigError as exc:
        raise _Stop("failed", "config", str(exc)) from None
    return config


def _run_verb(
    rep: Report,
    *,
    request: Request,
    config: Config,
    source: str,
    home: str,
    logger: logging.Logger,
    now: Callable[[], datetime],
    started: datetime,
) -> int:
    rep["warnings"].extend(config.warnings)
    if fs_type(config.state_dir) in REMOTE_FS:
        rep["warnings"].append(f"STATE_DIR {config.state_dir} is not on a local filesystem")
    for line in config.warnings:
        logger.warning("%s", line)
    rsync = find_rsync(config)
    rep["rsync_version"] = rsync_version(rsync, config.state_dir)
    warning = rsyncplan.version_warning(rep["rsync_version"])
    if warning:
        rep["warnings"].append(warning)
    logger.info("request %s from %s run-id %s", request.verb, source, request.run_id or "-")
    if request.verb == "version":
        rep["status"] = "ok"
        return emit(rep, now, started)
    if request.verb == "status":
        return _status(rep, config, now, started)
    if rsync is None:
        _fail(logger, rep, _Stop("failed", "config", "rsync not found (set RSYNC= in the config)"))
        return emit(rep, now, started)
    from clientside.sync import SyncContext, sync

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
    report.finish(rep, rep["status"], started, now())
    if rep["status"] != "queued":
        try:
            atomic_write(os.path.join(config.state_dir, LAST_REPORT), report.render(rep).encode())
        except OSError as exc:
            rep["warnings"].append(f"cannot save the report: {exc.strerror}")
    logger.info("report: status %s", rep["status"])
    return emit(rep, now, started)


def _status(rep: Report, config: Config, now: Callable[[], datetime], started: datetime) -> int:
    raw = read_small(os.path.join(config.state_dir, LAST_REPORT))
    if raw:
        try:
            sys.stdout.write(raw.decode("utf-8").strip() + "\n")
            sys.stdout.flush()
        except OSError:
            pass
        return 0
    from clientside.tree import Verifier, served_databases

    rep["status"] = "ok"
    rep["warnings"].append("no sync has completed yet")
    rep["databases"] = served_databases(Verifier(config.state_dir), config.to)
    return emit(rep, now, started)
