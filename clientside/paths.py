"""The mirror account as this process finds it: its home, the config file (read, then parsed by
``core.config``), the program's own paths, and checks of the filesystem the config points at
(the I/O half of config validation)."""

import contextlib
import os
import pwd
import shlex
import stat
import sys
from typing import List, Optional

from clientside.core.config import Config, ConfigError, build_config, parse_config_text
from clientside.fsutil import atomic_write, is_within, read_small

DEFAULT_CONFIG = "~/etc/clam-clientsync.conf"


def home_dir() -> str:
    """Return this user's home as the password database says (never ``$HOME`` first)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_dir
    except KeyError:
        return os.environ.get("HOME", "/")


def config_path(config: Optional[str], home: str) -> str:
    """Return the absolute path of the config file (``--config``, else the default)."""
    path = config or DEFAULT_CONFIG
    if path.startswith("~/"):
        path = home.rstrip("/") + path[1:]
    return os.path.abspath(path)


def load_config(path: str, home: str, source: Optional[str], *, strict: bool = True) -> Config:
    """Read, parse and check the config at ``path``; raise ConfigError with one clear line.

    ``strict`` (the default) first refuses a config another user could change (``check_trusted``);
    ``doctor`` checks that on its own and still reads the config."""
    if strict:
        check_trusted(path, "config", link_ok=True)
    try:
        if os.path.isdir(path):
            raise ConfigError(f"config {path} is a directory; --config must name a file")
        # a link was found safe above: read what it names
        data = read_small(os.path.realpath(path), 64 * 1024)
    except OSError as exc:
        raise ConfigError(
            f"config {path} cannot be read ({exc.strerror}); it must be a file this user can read"
        ) from None
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
    """Return where this program lives: what TO must never contain."""
    paths = [os.path.realpath(sys.argv[0])] if sys.argv and sys.argv[0] else []
    package = os.path.dirname(os.path.realpath(__file__))
    # inside a zipapp, __file__ is ARCHIVE/clientside/paths.py
    paths.append(os.path.dirname(package) if package.endswith(".pyz/clientside") else package)
    return paths


def check_config_file_mode(path: str, has_password: bool) -> None:
    """Raise ConfigError when a config holding a password is readable by group or others."""
    st = os.stat(path)
    if has_password and st.st_mode & 0o077:
        raise ConfigError(
            f"{path} holds RSYNC_PASSWORD but is readable by others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); run: chmod 600 {shlex.quote(path)}"
        )


def check_to(config: Config, *, home: str, config_path: str, program_paths: List[str]) -> None:
    """Raise ConfigError unless TO is a safe, existing directory of ours to serve from."""
    to = config.to
    real = os.path.realpath(to)
    if real == "/":
        raise ConfigError("TO must not be /")
    try:
        st = os.stat(to)
    except OSError as exc:
        raise ConfigError(f"TO {to}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"TO {to} is not a directory")
    if st.st_uid != os.geteuid():
        raise ConfigError(f"TO {to} is not owned by this user (uid {os.geteuid()})")
    if home and os.path.realpath(home) == real:
        raise ConfigError("TO must not be the home directory")
    guarded = [
        ("the home directory", home),
        ("~/.ssh", os.path.join(home, ".ssh") if home else ""),
        ("the config", config_path),
        ("the state directory (lock)", config.state_dir),
        ("the log file", config.log_file),
        *[("the program", p) for p in program_paths],
    ]
    for what, path in guarded:
        if path and is_within(path, to):
            raise ConfigError(f"TO {to} must not contain {what} ({path})")


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


# -- another local user (sshd's StrictModes) ------------------------------------------------


class UnsafePath(ConfigError):
    """A path another local user could change; ``problem`` and ``fix`` are one line each."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}; {fix}")
        self.problem = problem
        self.fix = fix


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _check_entry(path: str, st: os.stat_result, what: str, *, parent: bool) -> None:
    """Refuse ``path`` when it is owned by another user than root or us, or (not being a link)
    writable by group or others; a sticky directory above the path is fine: others cannot
    rename or remove what is ours in it (``/tmp``)."""
    q = shlex.quote(path)
    me = os.geteuid()
    if st.st_uid not in (0, me):
        raise UnsafePath(
            f"{what} {path} is owned by {_user_name(st.st_uid)} (uid {st.st_uid}), "
            f"not by {_user_name(me) + ' or root' if me else 'root'}",
            f"run: chown {shlex.quote(_user_name(me))} {q} (after checking what it holds)",
        )
    if stat.S_ISLNK(st.st_mode) or not st.st_mode & 0o022:
        return
    if parent and stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX:
        return
    raise UnsafePath(
        f"{what} {path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})",
        f"run: chmod go-w {q}",
    )


def _check_parents(path: str, what: str) -> None:
    """Check every existing directory above the entry ``path`` (the directory holding it,
    resolved: for a link, where the link itself lives), up to ``/``."""
    directory = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    while True:
        try:
            st = os.stat(directory)
        except OSError:
            st = None  # not there (yet): what is above it decides who could create it
        if st is not None:
            _check_entry(directory, st, f"{what}: directory", parent=True)
        if directory == "/":
            return
        directory = os.path.dirname(directory)


def check_trusted(path: str, what: str, *, link_ok: bool = False) -> None:
    """Raise UnsafePath unless no other local user can change ``path``: it (when it exists)
    and every directory above it are owned by root or this user and not writable by group or
    others, as sshd's StrictModes checks ``authorized_keys``.

    A symbolic link at ``path`` is refused unless ``link_ok``; then the link must be ours (or
    root's) and what it names passes the same checks."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        _check_parents(path, what)
        return
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        if not link_ok:
            raise UnsafePath(
                f"{what} {path} is a symbolic link, which is never followed there",
                f"remove it (rm {shlex.quote(path)}) or point the config at a real file",
            )
        _check_entry(path, st, f"{what} (link)", parent=False)
        _check_parents(path, what)  # where the link lives: who could replace it
        path = os.path.realpath(path)
        try:
            st = os.stat(path)
        except OSError:
            return  # a dangling link: reading it fails with its own error
    _check_entry(path, st, what, parent=False)
    _check_parents(path, what)


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
        _check_entry(path, st, "STATE_DIR entry", parent=False)
        if entry.name == "lock" and st.st_uid != os.geteuid():
            raise UnsafePath(
                f"the lock {path} is owned by {_user_name(st.st_uid)}, not by "
                f"{_user_name(os.geteuid())} (a run as another user left it)",
                f"run: rm {shlex.quote(path)} (when no sync runs)",
            )
        if entry.name == "lock" and st.st_mode & 0o077:
            raise UnsafePath(
                f"the lock {path} can be opened by others (mode {stat.S_IMODE(st.st_mode):04o}), "
                "who could hold it",
                f"run: chmod 600 {shlex.quote(path)}",
            )


def check_program(path: str, what: str) -> None:
    """Raise UnsafePath when the program at ``path`` (or a directory above it) is one another
    user could change: it would run as this account."""
    check_trusted(path, what, link_ok=True)


# -- one state directory, one tree ------------------------------------------------------------

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


REMOTE_FS = ("nfs", "nfs4", "cifs", "smbfs", "smb3", "fuse.sshfs", "ceph", "glusterfs", "9p")


def fs_type(path: str) -> Optional[str]:
    """Return the filesystem type of the mount holding ``path`` (from /proc/mounts)."""
    real = os.path.realpath(path)
    best, best_type = "", None
    try:
        with open("/proc/mounts", encoding="utf-8") as fh:
            for line in fh:
                fields = line.split()
                if len(fields) < 3:
                    continue
                mount = fields[1].replace("\\040", " ")
                if (real == mount or real.startswith(mount.rstrip("/") + "/")) and len(
                    mount
                ) >= len(best):
                    best, best_type = mount, fields[2]
    except OSError:
        return None
    return best_type
