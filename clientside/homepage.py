"""The home page's I/O: read the template the sync published into ``TO``, look for the admin's
logo, remember since when the release is served (``STATE_DIR/homepage.json``), and put
``TO/index.html`` in place by one rename; what the page says is ``core.homepage``'s.

Every name is reached from a descriptor of TO without following a symlink: a template that is
a link is not read, an ``index.html`` that is a link is replaced (its target is never
written). Nothing here fails a sync: every problem is a warning, and the served page stays
what it was."""

import contextlib
import logging
import os
import shlex
import socket
import stat
from datetime import datetime
from typing import List, Mapping, Optional, Tuple

from clientside.core.config import Config
from clientside.core.homepage import (
    LOGO_NAME,
    MAX_TEMPLATE,
    TEMPLATE_NAME,
    PageFacts,
    render_page,
    served_since,
)
from clientside.core.pagekeys import PAGE_NAME
from clientside.core.publishplan import TEMP_PREFIX
from clientside.fsutil import atomic_write, read_small
from pushwire.report import Database

log = logging.getLogger("clam-clientsync")
STATE_NAME = "homepage.json"
WARNING_PREFIX = "home page"  # every warning of the page starts so
_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def served_versions(databases: Mapping[str, Database]) -> Mapping[str, int]:
    """The versions of the databases TO serves whole (their MD5 matches)."""
    out = {}
    for name, db in databases.items():
        version = db.get("version")
        if db.get("md5_ok") and isinstance(version, int):
            out[name] = version
    return out


def write_page(config: Config, databases: Mapping[str, Database], now: datetime) -> List[str]:
    """Render the page for what TO serves (``databases``, the report's) and put it in place
    unless it is already there; return the warnings."""
    warnings: List[str] = []
    try:
        to_fd = os.open(config.to, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        return [f"home page not written: TO: {exc.strerror}"]
    try:
        template, problem = _read_template(to_fd)
        state_path = os.path.join(config.state_dir, STATE_NAME)
        previous = read_small(state_path, 4096)
        versions = served_versions(databases)
        since, state = served_since(
            previous.decode("utf-8", "replace") if previous is not None else None, versions, now
        )
        facts = PageFacts(socket.gethostname(), _is_file(to_fd, LOGO_NAME), versions, since)
        page, warning = render_page(template, config.page, facts)
        if problem:
            warning = f"home page: {TEMPLATE_NAME}: {problem}; the built-in template was used"
        if warning:
            warnings.append(warning)
        data = page.encode("utf-8")
        if _unchanged(to_fd, data):
            log.info("home page %s unchanged", PAGE_NAME)
        else:
            _replace(to_fd, data, config.to)
            log.info("home page %s written", PAGE_NAME)
        atomic_write(state_path, state.encode(), durable=False)
    except _NotWritten as exc:
        warnings.append(f"home page not written: {exc}")
    except OSError as exc:
        warnings.append(f"home page not written: {exc.filename or PAGE_NAME}: {exc.strerror}")
    finally:
        os.close(to_fd)
    for line in warnings:
        log.warning("%s", line)
    return warnings


def _read_template(to_fd: int) -> Tuple[Optional[bytes], Optional[str]]:
    """Return the template's bytes (at most one more than the limit) or None when TO has
    none, and why it cannot be read (a link, not a regular file)."""
    try:
        fd = os.open(TEMPLATE_NAME, _OPEN, dir_fd=to_fd)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, "is a symbolic link" if _is_link(to_fd, TEMPLATE_NAME) else exc.strerror
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a directory, a FIFO: fdopen would fail
        os.close(fd)
        return None, "is not a regular file"
    with os.fdopen(fd, "rb") as fh:
        return fh.read(MAX_TEMPLATE + 1), None


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def _is_file(dir_fd: int, name: str) -> bool:
    """Whether TO has ``name`` as a file (the admin's logo may be a link to one)."""
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def _unchanged(to_fd: int, data: bytes) -> bool:
    """Whether TO's page is a regular file holding exactly ``data``."""
    try:
        fd = os.open(PAGE_NAME, _OPEN, dir_fd=to_fd)
    except OSError:
        return False
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size != len(data):
        os.close(fd)
        return False
    with os.fdopen(fd, "rb") as fh:
        return fh.read(len(data) + 1) == data


class _NotWritten(Exception):
    """TO's page cannot be replaced; the message names why and the fix."""


def _replace(to_fd: int, data: bytes, to: str) -> None:
    """Write ``data`` to a temporary name in TO, make it durable, rename it over the page."""
    with contextlib.suppress(OSError):
        if stat.S_ISDIR(os.lstat(PAGE_NAME, dir_fd=to_fd).st_mode):
            path = shlex.quote(os.path.join(to, PAGE_NAME))
            raise _NotWritten(f"{PAGE_NAME} in TO is a directory (remove it: rm -r {path})")
    tmp = f"{TEMP_PREFIX}{PAGE_NAME}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp, dir_fd=to_fd)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o644, dir_fd=to_fd)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, 0o644)  # readable by the web server, whatever the umask
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, PAGE_NAME, src_dir_fd=to_fd, dst_dir_fd=to_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=to_fd)
        raise
    os.fsync(to_fd)
