"""``clam-clientsync maintenance``: announce, cancel or show this mirror's maintenance window
(the I/O shell of ``core.maintargs`` and ``pushwire.maintenance``), and the notice every
report carries.

The notice is ``TO/local_maintenance``: written through a temporary file and a rename (a
reader, nginx included, sees the old notice or the new one), mode 0644 (the web server serves
it), never followed when it is a symlink: one in its place is replaced by the file, and read
as no notice."""

import os
import stat
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from clientside.configfile import check_to, config_path, home_dir, load_config, program_paths
from clientside.core.args import UsageError
from clientside.core.config import ConfigError
from clientside.core.maintargs import MAINTENANCE_USAGE, MAX_DAYS_LIMIT, parse_maintenance_args
from clientside.fsutil import atomic_write
from pushwire import report
from pushwire.maintenance import (
    DAY,
    MAX_NOTICE_BYTES,
    NOTICE_NAME,
    Notice,
    NoticeError,
    format_time,
    in_effect,
    make_notice,
    over,
    parse_notice,
    render_notice,
    to_json,
)

READ_MAX_S = MAX_DAYS_LIMIT * DAY  # what the client reads back: syncd applies its own bound


def read_notice(to: str, now: float) -> Tuple[Optional[Notice], Optional[str]]:
    """Return the notice TO serves (None when there is none, or it is over) and why one in
    its place is no notice (a symlink, a directory, too large, not a notice), or None."""
    path = os.path.join(to, NOTICE_NAME)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"{path}: {exc.strerror}"
    if not stat.S_ISREG(st.st_mode):
        what = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
        return None, f"{path} is {what}: ignored (clam-clientsync maintenance --cancel removes it)"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(MAX_NOTICE_BYTES + 1)
    except OSError as exc:
        return None, f"{path}: {exc.strerror}"
    try:
        notice = parse_notice(data, max_s=READ_MAX_S)
    except NoticeError as exc:
        return None, f"{path}: {exc}: ignored"
    return (None if over(notice, now) else notice), None


def report_value(to: str, now: float) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """The report's ``maintenance`` (the notice in force or announced, else None) and a
    warning for the report when the file in its place is no notice."""
    notice, problem = read_notice(to, now)
    return (to_json(notice) if notice is not None else None), problem


def describe(notice: Notice, now: float) -> str:
    """One line saying the window and whether it is on."""
    on = in_effect(notice, now)
    when = "on now" if on else f"starts in {(notice.starts - now) / 3600:.1f} h"
    return (
        f"maintenance from {format_time(notice.starts)} until {format_time(notice.ends)} "
        f"({when}): {notice.reason}"
    )


def run_maintenance(
    argv: List[str], home: Optional[str] = None, now: Callable[[], float] = time.time
) -> int:
    """``clam-clientsync maintenance ...``: return the exit code; one line on stdout, or one
    line on stderr naming the problem and the fix."""
    at = now()
    try:
        args = parse_maintenance_args(argv, at)
    except UsageError as exc:
        return _fail(f"{exc}", report.EXIT_USAGE)
    if args.action == "help":
        print(MAINTENANCE_USAGE)
        return 0
    home = os.path.abspath(args.home) if args.home else (home or home_dir())
    path = config_path(args.config, home)
    try:
        config = load_config(path, home, None)
        check_to(config, home=home, config_path=path, program_paths=program_paths())
    except ConfigError as exc:
        return _fail(str(exc), report.EXIT_CONFIG)
    try:
        if args.action == "show":
            print(_show(config.to, at))
        elif args.action == "cancel":
            print(_cancel(config.to))
        else:
            assert args.starts is not None and args.ends is not None
            notice = make_notice(args.starts, args.ends, args.reason, now=at, max_s=args.max_s)
            print(_announce(config.to, notice, at))
    except NoticeError as exc:
        return _fail(str(exc), report.EXIT_USAGE)
    except _Failed as exc:
        return _fail(str(exc), report.EXIT_FAILURE)
    return 0


class _Failed(Exception):
    """The notice cannot be read, written or removed; the message says which and why."""


def _show(to: str, at: float) -> str:
    notice, problem = read_notice(to, at)
    if problem:
        raise _Failed(problem)
    return describe(notice, at) if notice else "no maintenance announced"


def _cancel(to: str) -> str:
    target = os.path.join(to, NOTICE_NAME)
    if os.path.isdir(target) and not os.path.islink(target):
        raise _Failed(f"{target} is a directory: remove it by hand")
    try:
        os.unlink(target)
    except FileNotFoundError:
        return "no maintenance announced: nothing to cancel"
    except OSError as exc:
        raise _Failed(f"cannot remove {target}: {exc.strerror}") from None
    return f"maintenance cancelled: {target} removed"


def _announce(to: str, notice: Notice, at: float) -> str:
    target = os.path.join(to, NOTICE_NAME)
    if os.path.isdir(target) and not os.path.islink(target):
        raise _Failed(f"{target} is a directory: remove it by hand")
    try:
        atomic_write(target, render_notice(notice), 0o644)
        os.chmod(target, 0o644)  # the web server reads it, whatever this umask
    except OSError as exc:
        raise _Failed(f"cannot write {target}: {exc.strerror}") from None
    return f"announced: {describe(notice, at)}; written to {target}"


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"clam-clientsync maintenance: {message}\n")
    return code
