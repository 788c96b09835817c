"""Reading and writing syncd's own files: syncd.toml (found in archvsync's search order), the
inventory (rewritten atomically), and the release in the source tree: its CVD headers, its
manifest, and the files a mirror must serve whole. Every file syncd writes goes through
`write_atomic`."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shlex
import stat
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pushwire.cvd import DATABASES, HEADER_SIZE, CvdError, parse_header
from syncd.errors import ConfigError
from syncd.httpcheck.answer import tail_span
from syncd.inventory.model import Inventory, parse_inventory
from syncd.release.manifest import (
    FILE_TAIL_BYTES,
    MAX_PROOF_BYTES,
    CvdTail,
    ReleaseFile,
    manifest,
)
from syncd.release.tree import SourceTree
from syncd.settings import SyncdConfig, candidates, parse_config

INVENTORY_HEADER = "# pushsync mirror inventory (edited by 'syncd mirrors ...')\n\n"


def write_atomic(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data` so that a reader sees the old file or the new, never part of
    one, and a crash leaves one of the two on disk: write a temporary file of a unique name in
    the same directory (created exclusively, never through a symlink), fsync it, give it
    `mode`, rename it over `path` (a symlink there is replaced, not followed), fsync the
    directory. Raise OSError; the temporary file is removed on failure."""
    raw = data.encode() if isinstance(data, str) else data
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    dirfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


SECRET_MAX_BYTES = 64 * 1024


def read_secret_file(path: Path, what: str, *, missing: str = "point the setting at it") -> str:
    """Given a file that holds a secret (`what`: "the pusher key", "[dns] key_secret_file"),
    return its text. As ssh treats a private key, refuse it (ConfigError, one line naming the
    file, the problem and the fix) when it is readable, writable or executable by group or
    others, not owned by the user running syncd, not a regular file (a FIFO would block, a
    device never ends), larger than SECRET_MAX_BYTES, or not UTF-8 text. The checks and the
    read are of the one opened file, so it cannot be swapped in between. `missing`: the fix
    when there is no such file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist: {missing}") from None
    except OSError as err:
        raise ConfigError(f"{what} {path}: cannot read: {err.strerror}") from None
    try:
        problem = secret_problem(path, os.fstat(fd))
        if problem:
            raise ConfigError(f"{what} {path} {problem}")
        data = os.read(fd, SECRET_MAX_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"{what} {path}: cannot read: {err.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > SECRET_MAX_BYTES:
        raise ConfigError(
            f"{what} {path} is larger than {SECRET_MAX_BYTES // 1024} KiB: "
            "point the setting at the secret's own file"
        )
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise ConfigError(
            f"{what} {path} is not text: point the setting at the secret's own file"
        ) from None


def secret_problem(path: Path, info: os.stat_result) -> str | None:
    """Given a secret file's path and stat, return what is wrong with it and the fix, or None
    (see `read_secret_file`)."""
    quoted = shlex.quote(str(path))
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file: point the setting at the secret's own file"
    if info.st_uid != os.geteuid():
        return (
            f"is owned by uid {info.st_uid}, not by the user running syncd (uid {os.geteuid()}): "
            f"run chown {_user()} {quoted} && chmod 600 {quoted}"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        return f"is open to group or others (mode {mode:04o}): run chmod 600 {quoted}"
    return None


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # no passwd entry (a container's arbitrary uid)
        return str(os.geteuid())


def find_config(explicit: Path | None) -> Path | None:
    """Return the syncd.toml to use: `explicit` when given (it must exist), else the first of
    ./etc/syncd.toml, ~/.config/syncd/syncd.toml, /etc/syncd/syncd.toml that exists."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"{explicit}: no such configuration file (given with --config)")
        return explicit
    for path in candidates(Path.cwd(), Path.home()):
        if path.is_file():
            return path
    return None


def load_config(explicit: Path | None) -> tuple[SyncdConfig, Path | None]:
    """Return the configuration in effect and the file it came from (defaults when none)."""
    path = find_config(explicit)
    if path is None:
        return SyncdConfig(), None
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
    cfg = parse_config(text, str(path))
    cfg._origin = path  # the file it came from, for the messages that name it
    return cfg, path


def _inventory_text(path: Path, missing: str | None = None) -> str:
    """The inventory file's text; `missing` when there is no such file (an error if None)."""
    try:
        return path.read_text()
    except FileNotFoundError:
        if missing is not None:
            return missing
        raise ConfigError(f"{path}: no such inventory file: create it or fix --inventory") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the inventory: {err.strerror}") from None


def read_inventory(path: Path) -> Inventory:
    return parse_inventory(_inventory_text(path), str(path))


def edit_inventory(path: Path, edit: Callable[[str], str], *, create: bool = False) -> None:
    """Apply `edit` (TOML text in, TOML text out: see syncd.inventory.model's ``text_*``) to
    the inventory file and replace it atomically; a missing file is an error unless `create`,
    when the edit starts from an empty inventory."""
    new = edit(_inventory_text(path, INVENTORY_HEADER if create else None))
    try:
        write_atomic(path, new)
    except OSError as err:
        raise ConfigError(f"{path}: cannot write the inventory: {err.strerror}") from None


def read_stamp_file(tree: Path, limit: int) -> bytes | None:
    """Return the first `limit` + 1 bytes of ``<tree>/timestamp``, None when there is none."""
    try:
        with (tree / "timestamp").open("rb") as f:
            return f.read(limit + 1)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise ConfigError(f"{tree}/timestamp: {err.strerror}") from None


def write_stamp_file(tree: Path, stamp: int) -> None:
    """Replace ``<tree>/timestamp`` with `stamp` atomically (a reader sees the old file or the
    new, never half of one; a symlink in its place is replaced, never followed)."""
    try:
        write_atomic(tree / "timestamp", f"{stamp}\n")
    except OSError as err:
        raise ConfigError(f"cannot write {tree}/timestamp: {err.strerror}") from None


def read_release_files(tree: Path, names: Sequence[str]) -> tuple[ReleaseFile, ...]:
    """Return size and SHA-256 of each of `names` in `tree` (regular files only: a link or a
    directory in the source tree is a ConfigError, not something to prove)."""
    out = []
    for name in names:
        path = tree / name
        try:
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode):
                raise ConfigError(f"{path}: not a regular file in the source tree")
            if info.st_size > MAX_PROOF_BYTES:
                raise ConfigError(f"{path}: {info.st_size} bytes, too big for a {name} file")
            data = path.read_bytes()
        except OSError as err:
            raise ConfigError(f"{path}: {err.strerror}") from None
        digest = hashlib.sha256(data).hexdigest()
        out.append(ReleaseFile(name, len(data), digest, data[-FILE_TAIL_BYTES:]))
    return tuple(out)


def read_cvd_tails(tree: Path) -> tuple[CvdTail, ...]:
    """Return the tail of each CVD in `tree` (its last bytes after the header: what the proof
    compares with a mirror's), with the header's version and MD5; a CVD whose header does not
    parse is a ConfigError."""
    tails = []
    for db in DATABASES:
        path = tree / f"{db}.cvd"
        try:
            cvd = _read_cvd(path)
            header = parse_header(cvd.head)
        except FileNotFoundError:
            continue
        except OSError as err:
            raise ConfigError(f"{path}: {err.strerror}") from None
        except CvdError as err:
            raise ConfigError(f"{path}: {err}") from None
        if cvd.tail is not None:
            tails.append(CvdTail(db, header.version, header.md5, cvd.size, *cvd.tail))
    return tuple(tails)


@dataclass(frozen=True)
class _Cvd:
    """One CVD as one open read it: its header's bytes, its size and mtime, and its tail
    (where it starts, its bytes; None: too short to have one)."""

    head: bytes
    size: int
    mtime: float
    tail: tuple[int, bytes] | None


def _read_cvd(path: Path) -> _Cvd:
    """Read a CVD's header and tail in one open (raise OSError)."""
    with path.open("rb") as f:
        head = f.read(HEADER_SIZE)
        info = os.fstat(f.fileno())
        span = tail_span(info.st_size)
        if span is None:
            return _Cvd(head, info.st_size, info.st_mtime, None)
        f.seek(span[0])
        return _Cvd(head, info.st_size, info.st_mtime, (span[0], f.read(span[1] - span[0] + 1)))


SETTLE_TRIES = 20  # a CVD caught mid-write is read again, this many times at most ...
SETTLE_PAUSE_S = 0.1  # ... this long apart: 2 s for a release still landing to show its header


def read_source_tree(
    tree: Path,
    *,
    tries: int = SETTLE_TRIES,
    pause_s: float = SETTLE_PAUSE_S,
    sleep: Callable[[float], None] = time.sleep,
) -> SourceTree:
    """Read the release `tree` holds, once: each CVD's header, the files a mirror must serve
    whole, and the CVDs' tails. A release written in place shows a CVD shorter than its
    header, or a header half-written, for a moment: such a tree is read again, `tries` times
    at most, `pause_s` apart; a CVD still bad after that is a ConfigError naming it."""
    for _ in range(tries - 1):
        try:
            return _read_source_tree(tree)
        except _Unsettled:
            sleep(pause_s)
    try:
        return _read_source_tree(tree)
    except _Unsettled as err:
        raise ConfigError(str(err)) from None


class _Unsettled(Exception):
    """A CVD's header does not parse: bad for good, or caught while being written."""


def _read_cvds(tree: Path) -> dict[str, _Cvd]:
    """Each CVD (daily, main, bytecode) of `tree`, each opened once."""
    if not tree.is_dir():
        raise ConfigError(f"{tree}: the source tree is not a directory")
    cvds: dict[str, _Cvd] = {}
    for db in DATABASES:
        path = tree / f"{db}.cvd"
        if not path.is_file():
            continue
        try:
            cvds[db] = _read_cvd(path)
        except FileNotFoundError:  # replaced meanwhile: read the tree again
            raise _Unsettled(f"{path}: gone while read") from None
        except OSError as err:
            raise ConfigError(f"{path}: {err.strerror}") from None
    if not cvds:
        raise ConfigError(f"{tree}: no daily.cvd, main.cvd or bytecode.cvd in the source tree")
    return cvds


def _read_source_tree(tree: Path) -> SourceTree:
    cvds = _read_cvds(tree)
    raw = {db: cvd.head for db, cvd in cvds.items()}
    headers = {}
    for db, head in raw.items():
        try:
            headers[db] = parse_header(head)
        except CvdError as err:
            raise _Unsettled(f"{tree}/{db}.cvd: {err}") from None
    try:
        names = sorted(os.listdir(tree))
    except OSError as err:
        raise ConfigError(f"{tree}: {err.strerror}") from None
    found = manifest({db: h.version for db, h in headers.items()}, names)
    built = max((float(h.unix_time or 0) for h in headers.values()), default=0.0)
    if not built:  # old headers carry no unix time: the files' own
        built = max(cvd.mtime for cvd in cvds.values())
    tails = tuple(
        CvdTail(db, headers[db].version, headers[db].md5, cvd.size, *cvd.tail)
        for db, cvd in cvds.items()
        if cvd.tail is not None
    )
    return SourceTree(
        tree,
        headers,
        found,
        read_release_files(tree, found.proof_names()),
        tails,
        built,
    )
