"""The mirror account's config as this process finds it: its home, where the config file is,
the file read (parsed by ``core.config``) and checked, and the I/O half of its validation: the
``TO`` it names checked on the filesystem, against the program's own paths among others."""

import os
import pwd
import shlex
import stat
import sys
from typing import List, Optional

from clientside.core.config import Config, ConfigError, build_config, parse_config_text
from clientside.fsutil import is_within, read_small
from clientside.trust import check_trusted

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
    # inside a zipapp, __file__ is ARCHIVE/clientside/configfile.py
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
