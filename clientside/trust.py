"""Whether another local user could change a path, as sshd's ``StrictModes`` asks it of
``authorized_keys``: the path (when it exists) and every directory above it owned by root or
this user and not writable by group or others (a sticky directory above is fine). The config,
the state directory, the log and the programs that run as this account are checked so."""

import os
import pwd
import shlex
import stat

from clientside.core.config import ConfigError


class UnsafePath(ConfigError):
    """A path another local user could change; ``problem`` and ``fix`` are one line each."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}; {fix}")
        self.problem = problem
        self.fix = fix


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def check_entry(path: str, st: os.stat_result, what: str, *, parent: bool) -> None:
    """Refuse ``path`` when it is owned by another user than root or us, or (not being a link)
    writable by group or others; a sticky directory above the path is fine: others cannot
    rename or remove what is ours in it (``/tmp``)."""
    q = shlex.quote(path)
    me = os.geteuid()
    if st.st_uid not in (0, me):
        raise UnsafePath(
            f"{what} {path} is owned by {user_name(st.st_uid)} (uid {st.st_uid}), "
            f"not by {user_name(me) + ' or root' if me else 'root'}",
            f"run: chown {shlex.quote(user_name(me))} {q} (after checking what it holds)",
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
            check_entry(directory, st, f"{what}: directory", parent=True)
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
        check_entry(path, st, f"{what} (link)", parent=False)
        _check_parents(path, what)  # where the link lives: who could replace it
        path = os.path.realpath(path)
        try:
            st = os.stat(path)
        except OSError:
            return  # a dangling link: reading it fails with its own error
    check_entry(path, st, what, parent=False)
    _check_parents(path, what)


def check_program(path: str, what: str) -> None:
    """Raise UnsafePath when the program at ``path`` (or a directory above it) is one another
    user could change: it would run as this account."""
    check_trusted(path, what, link_ok=True)
