"""Logs in the archvsync shape ``date host clam-clientsync[pid]: message``, to stderr and a file."""

import contextlib
import errno
import logging
import os
import socket
import stat
import time
from io import TextIOWrapper
from typing import List, Optional

LOGGER_NAME = "clam-clientsync"
LOG_MAX_BYTES = 1 << 20
LOG_BACKUPS = 5


def escape_controls(text: str) -> str:
    """Return ``text`` with control characters (and backslashes) escaped, one line."""
    out: List[str] = []
    for ch in text:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif code < 32 or code == 127 or 0x80 <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        else:
            out.append(ch)
    return "".join(out)


def redact(text: str, secrets: List[str]) -> str:
    """Return ``text`` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class _Formatter(logging.Formatter):
    def __init__(self, secrets: List[str]) -> None:
        super().__init__()
        self.secrets = secrets
        self.host = socket.gethostname()

    def format(self, record: logging.LogRecord) -> str:
        message = redact(record.getMessage(), self.secrets)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        return f"{stamp} {self.host} clam-clientsync[{os.getpid()}]: {escape_controls(message)}"


class _RotatingFile(logging.FileHandler):
    """A log file rotated by size into NAME.1 .. NAME.N, as logging.handlers.RotatingFileHandler
    rotates, without importing logging.handlers (pickle, queue, ...: ~4 ms of every push)."""

    def __init__(self, path: str, max_bytes: int, backups: int) -> None:
        super().__init__(path, encoding="utf-8")
        self.max_bytes = max_bytes
        self.backups = backups

    def _open(self) -> "TextIOWrapper":
        """Open the log for appending, never through a symbolic link, and only when it is a
        regular file of this user (a planted link or file is refused, not written)."""
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self.baseFilename, flags, 0o600)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            os.close(fd)
            raise PermissionError(errno.EPERM, "not a regular file of this user", self.baseFilename)
        return os.fdopen(fd, "a", encoding="utf-8")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = self.stream or self._open()
            self.stream = stream
            stream.seek(0, os.SEEK_END)  # another run may have written meanwhile
            if stream.tell() + len(self.format(record)) + 1 >= self.max_bytes:
                self._rotate()
        except Exception:
            self.handleError(record)
            return
        super().emit(record)

    def _rotate(self) -> None:
        """Shift NAME.N-1 .. NAME to NAME.N .. NAME.1; a name another client rotated away
        meanwhile is skipped (the log is shared by every run of this account)."""
        if self.stream:
            self.stream.close()
        names = [self.baseFilename] + [f"{self.baseFilename}.{i}" for i in range(1, self.backups)]
        for i in range(len(names) - 1, -1, -1):
            with contextlib.suppress(FileNotFoundError):
                os.replace(names[i], f"{self.baseFilename}.{i + 1}")
        self.stream = self._open()


def setup(secrets: List[str], *, stderr: bool = True) -> logging.Logger:
    """Return the logger writing to stderr; ``add_file`` adds the rotated log file later."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    formatter = _Formatter(secrets)
    if stderr:
        handler = logging.StreamHandler()
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    return logger


def add_file(logger: logging.Logger, path: str, secrets: Optional[List[str]] = None) -> None:
    """Add the rotated log file at ``path`` (1 MiB, 5 kept)."""
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    handler = _RotatingFile(path, LOG_MAX_BYTES, LOG_BACKUPS)
    handler.setFormatter(_Formatter(secrets or []))
    logger.addHandler(handler)


def set_secrets(logger: logging.Logger, secrets: List[str]) -> None:
    """Make every handler of ``logger`` redact ``secrets``."""
    for handler in logger.handlers:
        if isinstance(handler.formatter, _Formatter):
            handler.formatter.secrets = secrets


def close(logger: logging.Logger) -> None:
    """Flush and close every handler; a log that cannot be flushed (a full disk) is let go."""
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        with contextlib.suppress(OSError, ValueError):
            handler.close()
