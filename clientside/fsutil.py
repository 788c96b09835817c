"""Small filesystem helpers of the I/O shell."""

import contextlib
import os
import stat
from typing import Dict, Optional

from clientside.core.mounts import mount_type
from clientside.core.publishplan import PRIVATE_DIR, Entry


def atomic_write(path: str, data: bytes, mode: int = 0o600, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename; readers see old or new.

    ``durable=False`` skips the fsync (caches that are merely rebuilt when lost)."""
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_small(path: str, limit: int = 1 << 20) -> Optional[bytes]:
    """Return up to ``limit`` bytes of a regular file, or None when it is missing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as fh:
        return fh.read(limit)


def listing(root: str, *, skip_private: bool = True) -> Dict[str, Entry]:
    """Return every entry under ``root`` by relative path; symlinks are never followed.

    An entry (or a directory below ``root``) removed or renamed while it is listed, by
    whatever else writes there (a stats job in ``local_*``), is not there: it is skipped."""
    found: Dict[str, Entry] = {}
    pending = [""]
    while pending:
        rel = pending.pop()
        try:
            it = os.scandir(os.path.join(root, rel) if rel else root)
        except FileNotFoundError:
            if not rel:
                raise
            continue
        with it:
            for de in it:
                path = f"{rel}/{de.name}" if rel else de.name
                if skip_private and path == PRIVATE_DIR:
                    continue
                try:
                    st = de.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    found[path] = Entry("dir", st.st_dev, st.st_ino)
                    pending.append(path)
                elif stat.S_ISLNK(st.st_mode):
                    found[path] = Entry("link", st.st_dev, st.st_ino)
                elif stat.S_ISREG(st.st_mode):
                    found[path] = Entry("file", st.st_dev, st.st_ino)
    return found


def is_within(path: str, directory: str) -> bool:
    """Return whether ``path`` is ``directory`` or below it (both made absolute and real)."""
    p = os.path.realpath(path)
    d = os.path.realpath(directory)
    return p == d or p.startswith(d.rstrip("/") + "/")


def fs_type(path: str) -> Optional[str]:
    """Return the filesystem type of the mount holding ``path`` (from /proc/mounts), or None
    when that cannot be read."""
    try:
        with open("/proc/mounts", encoding="utf-8") as fh:
            text = fh.read()
    except OSError:
        return None
    return mount_type(text, os.path.realpath(path))
