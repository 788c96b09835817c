"""The state directory: made (0700) and checked (nothing in it another user could change or
hold, no symbolic link), then bound to one served tree, whose lock, queue mark, verification
cache and last report it holds."""

import contextlib
import os
import shlex
import stat
from typing import Optional

from clientside.core.config import ConfigError
from clientside.fsutil import atomic_write, read_small
from clientside.trust import UnsafePath, check_entry, check_trusted, user_name


def ensure_state_dir(path: str) -> None:
    """Create the state directory (0700) if needed; raise ConfigError when unusable, or when
    another user could change it or what it holds (``check_state_dir``)."""
    check_trusted(path, "STATE_DIR", link_ok=True)
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"STATE_DIR {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"STATE_DIR {path} is not writable")
    check_state_dir(path)


def check_state_dir(state_dir: str) -> None:
    """Raise UnsafePath when an entry of the state directory is a link, or another user's, or
    writable by others, or when the lock could be opened (and so held) by another user.

    Another client may run meanwhile: an entry it renamed or removed between the listing and
    its look (``.NAME.tmp.PID``) is not there any more, and so is nothing to check."""
    try:
        entries = list(os.scandir(state_dir))
    except OSError as exc:
        raise ConfigError(f"STATE_DIR {state_dir}: {exc.strerror}") from None
    for entry in entries:
        path = entry.path
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ConfigError(f"STATE_DIR entry {path}: {exc.strerror}") from None
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePath(
                f"STATE_DIR holds a symbolic link {path}, which is never followed",
                f"remove it: rm {shlex.quote(path)}",
            )
        check_entry(path, st, "STATE_DIR entry", parent=False)
        if entry.name == "lock" and st.st_uid != os.geteuid():
            raise UnsafePath(
                f"the lock {path} is owned by {user_name(st.st_uid)}, not by "
                f"{user_name(os.geteuid())} (a run as another user left it)",
                f"run: rm {shlex.quote(path)} (when no sync runs)",
            )
        if entry.name == "lock" and st.st_mode & 0o077:
            raise UnsafePath(
                f"the lock {path} can be opened by others (mode {stat.S_IMODE(st.st_mode):04o}), "
                "who could hold it",
                f"run: chmod 600 {shlex.quote(path)}",
            )


TREE_NAME = "tree"
LAST_REPORT_NAME = "last-report.json"


def bound_tree(state_dir: str) -> Optional[str]:
    """Return the tree ``state_dir`` is bound to, or None before its first use."""
    try:
        data = read_small(os.path.join(state_dir, TREE_NAME), 4096)
    except OSError:
        return None
    return data.decode("utf-8", "replace").strip() if data is not None else None


def bind_state_dir(state_dir: str, to: str) -> None:
    """Tie ``state_dir`` to the tree ``to``: its lock, queue mark and last report describe that
    tree only. The first use writes ``STATE_DIR/tree`` (a report already there, of no known
    tree, is removed); raise ConfigError when the directory is bound to another tree."""
    path = os.path.join(state_dir, TREE_NAME)
    real_to = os.path.realpath(to)
    data = read_small(path, 4096)
    if data is None:
        tmp = os.path.join(state_dir, f".{TREE_NAME}.tmp.{os.getpid()}")
        atomic_write(tmp, (real_to + "\n").encode())
        try:
            os.link(tmp, path)  # creates the binding whole, or fails if another run was first
        except FileExistsError:
            data = read_small(path, 4096)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(state_dir, LAST_REPORT_NAME))
            return
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    bound = (data or b"").decode("utf-8", "replace").strip()
    if bound != real_to:
        raise ConfigError(
            f"STATE_DIR {state_dir} holds the state of TO {bound}, not of TO {to}; "
            f"give this config a STATE_DIR= of its own (or, if TO has moved, remove {path})"
        )
