"""The atomic publish into ``TO``: each file by a hard link to a temporary name and a rename
over its target, then the deletions; what to do is ``core.publishplan``'s plan.

Every name is reached from a descriptor of TO (and of the staging tree) one component at a
time with ``O_NOFOLLOW``: a parent that is a symlink (placed by a source in an earlier round,
or by anyone) stops that path before anything is written, so nothing is ever written, renamed
or deleted outside TO, nor anywhere in TO but where the plan says."""

import contextlib
import os
import stat
from typing import Dict, FrozenSet, Iterator, List, NamedTuple, Optional, Sequence, Set, Tuple

from clientside.core.publishplan import TEMP_PREFIX, Entry, Plan, link_problem, plan_publish
from clientside.core.rsyncplan import disk_full_errno
from clientside.core.stagedtree import Finding

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class PublishOutcome(NamedTuple):
    """What one publish into TO did: counts, failures, warnings."""

    published: int
    deleted: int
    problems: List[str]  # failures: the round is not ok
    warnings: List[str]  # names never published, deletions postponed
    full: FrozenSet[str] = frozenset()  # the problems that are a full disk (space, inodes)


class NotADirectory(OSError):
    """A parent of a path to publish is not a real directory (a symlink, a file)."""


@contextlib.contextmanager
def _parent(root_fd: int, relpath: str) -> Iterator[Tuple[int, str]]:
    """Yield a descriptor of ``relpath``'s parent, walked from ``root_fd`` without following a
    symlink, and the last component; raise NotADirectory naming the parent that is not one."""
    parts = relpath.split("/")
    fd = os.dup(root_fd)
    try:
        for i, part in enumerate(parts[:-1]):
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                where = "/".join(parts[: i + 1])
                raise NotADirectory(exc.errno, f"{where} is not a real directory") from exc
            os.close(fd)
            fd = nxt
        yield fd, parts[-1]
    finally:
        os.close(fd)


class _Failed(OSError):
    """The staged file cannot be published as it is."""


def _publish_one(
    to_fd: int, staging_fd: int, path: str, patterns: Sequence[str], pid: int
) -> Optional[str]:
    """Make TO's ``path`` the staged one in one rename; return why a link is not published
    (a warning), None when done; raise OSError when it cannot be (a failure)."""
    with _parent(staging_fd, path) as (src_dir, name), _parent(to_fd, path) as (dst_dir, _):
        tmp = f"{TEMP_PREFIX}{name}.{pid}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dst_dir)
        st = os.lstat(name, dir_fd=src_dir)
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(name, dir_fd=src_dir)
            problem = link_problem(path, target, patterns)
            if problem:
                return f"symlink not published: {problem}"
            os.symlink(target, tmp, dir_fd=dst_dir)
        elif stat.S_ISREG(st.st_mode):
            # rsync does not fsync: make the data durable before a name in TO points at it, so
            # a crash cannot leave a served name on an empty or partial file
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=src_dir)
            try:
                now = os.fstat(fd)
                if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                    raise _Failed(0, "changed while publishing")
                os.fsync(fd)
            finally:
                os.close(fd)
            os.link(name, tmp, src_dir_fd=src_dir, dst_dir_fd=dst_dir, follow_symlinks=False)
        else:
            raise _Failed(0, "not a regular file")
        os.rename(tmp, name, src_dir_fd=dst_dir, dst_dir_fd=dst_dir)
    return None


def _mkdir(to_fd: int, path: str) -> None:
    with _parent(to_fd, path) as (dir_fd, name):
        try:
            os.mkdir(name, 0o755, dir_fd=dir_fd)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(name, dir_fd=dir_fd).st_mode):
                raise NotADirectory(0, f"{path} is not a real directory") from None


def execute(
    plan_: Plan, to: str, staging: str, max_delete: int, patterns: Sequence[str] = ()
) -> PublishOutcome:
    """Apply the plan: link+rename each file, then deletions (bounded by ``max_delete``), none
    when anything was held back or failed to publish."""
    problems: List[str] = []
    warnings: List[str] = [f"{p}: not published: {why}" for p, why in plan_.refused]
    problems += [
        f"{p}: {parent} in TO is not a real directory (a symlink?); not published"
        for p, parent in plan_.unsafe
    ]
    problems += [
        f"{p}: TO and the source disagree on whether it is a directory; left as is"
        for p in plan_.conflicts
    ]
    full: Set[str] = set()
    to_fd = os.open(to, os.O_RDONLY | os.O_DIRECTORY)
    try:
        staging_fd = os.open(staging, _DIR_FLAGS)
        try:
            published = _publish_all(
                plan_, (to_fd, staging_fd), patterns, (problems, full), warnings
            )
        finally:
            os.close(staging_fd)
        deleted = 0
        wanted = len(plan_.deletes)
        if plan_.kept or (problems and wanted):
            count = len(plan_.kept) or wanted
            warnings.append(f"{count} deletions postponed: this round held something back")
        elif wanted > max_delete:
            problems.append(
                f"{wanted} files to delete exceed MAX_DELETE={max_delete}; none deleted"
            )
        else:
            deleted = _delete_all(plan_, to_fd, problems)
        os.fsync(to_fd)
    finally:
        os.close(to_fd)
    return PublishOutcome(published, deleted, problems, warnings, frozenset(full))


def _publish_all(
    plan_: Plan,
    fds: Tuple[int, int],
    patterns: Sequence[str],
    failures: Tuple[List[str], Set[str]],
    warnings: List[str],
) -> int:
    """Make each directory, then publish each file; a failure is a problem (and, when the
    disk is full, one of ``full``)."""
    to_fd, staging_fd = fds
    problems, full = failures

    def failed(path: str, exc: OSError) -> None:
        problems.append(f"{path}: {exc.strerror}; not published")
        if disk_full_errno(exc.errno):
            full.add(problems[-1])

    blocked: List[str] = []
    for d in plan_.mkdirs:
        try:
            _mkdir(to_fd, d)
        except OSError as exc:
            failed(d, exc)
            blocked.append(d)
    published = 0
    pid = os.getpid()
    for path in plan_.publish:
        if any(path.startswith(d + "/") for d in blocked):
            continue  # its directory was not made: told once, above
        try:
            why = _publish_one(to_fd, staging_fd, path, patterns, pid)
        except OSError as exc:
            failed(path, exc)
            continue
        if why is None:
            published += 1
        else:
            warnings.append(f"{path}: {why}")
    return published


def _delete_all(plan_: Plan, to_fd: int, problems: List[str]) -> int:
    deleted = 0
    for path in plan_.deletes:
        try:
            with _parent(to_fd, path) as (dir_fd, name):
                os.unlink(name, dir_fd=dir_fd)
            deleted += 1
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror}")
    for path in plan_.rmdirs:
        with contextlib.suppress(OSError), _parent(to_fd, path) as (dir_fd, name):
            os.rmdir(name, dir_fd=dir_fd)
    return deleted


def plan_publish_from(
    staged: Dict[str, Entry],
    served: Dict[str, Entry],
    patterns: Sequence[str],
    bad: Sequence[Finding],
) -> Plan:
    """Return the publish plan holding back every file with a failed finding."""
    return plan_publish(staged, served, patterns=patterns, failed=frozenset(f.path for f in bad))
