"""The atomic publish into ``TO``: each file by a hard link to a temporary name and a rename
over its target, then the deletions; what to do is ``core.publishplan``'s plan."""

import contextlib
import os
import stat
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

from clientside.core.publishplan import TEMP_PREFIX, Entry, Plan, plan_publish
from clientside.fsutil import listing
from clientside.verification import Finding


def plan(
    to: str, staging: str, patterns: Sequence[str], failed: FrozenSet[str]
) -> Tuple[Plan, Dict[str, Entry], Dict[str, Entry]]:
    staged = listing(staging, skip_private=False)
    served = listing(to)
    return plan_publish(staged, served, patterns=patterns, failed=failed), staged, served


def _safe_link_target(target: str) -> bool:
    return not target.startswith("/") and ".." not in target.split("/")


def _publish_one(src: str, tmp: str, dst: str) -> Optional[str]:
    """Make ``dst`` the staged ``src`` in one rename; return a problem or None."""
    if os.path.lexists(tmp):
        os.unlink(tmp)
    if stat.S_ISLNK(os.lstat(src).st_mode):
        target = os.readlink(src)
        if not _safe_link_target(target):
            return f"symlink to {target!r} not published"
        os.symlink(target, tmp)
    else:
        # rsync does not fsync: make the data durable before a name in TO points at it, so a
        # crash cannot leave a served name on an empty or partial file
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(src, tmp, follow_symlinks=False)
    os.rename(tmp, dst)
    return None


def execute(plan_: Plan, to: str, staging: str, max_delete: int) -> Tuple[int, int, List[str]]:
    """Apply the plan: link+rename each file, then deletions (bounded by ``max_delete``).

    Return (files published, files deleted, problems).
    """
    problems: List[str] = []
    for d in plan_.mkdirs:
        os.makedirs(os.path.join(to, d), mode=0o755, exist_ok=True)
    published = 0
    pid = os.getpid()
    for path in plan_.publish:
        src = os.path.join(staging, path)
        dst = os.path.join(to, path)
        tmp = os.path.join(os.path.dirname(dst), f"{TEMP_PREFIX}{os.path.basename(dst)}.{pid}")
        try:
            problem = _publish_one(src, tmp, dst)
        except OSError as exc:
            problem = f"{exc.strerror}"
        if problem:
            problems.append(f"{path}: {problem}")
        else:
            published += 1
    deleted = 0
    if len(plan_.deletes) > max_delete:
        problems.append(
            f"{len(plan_.deletes)} files to delete exceed MAX_DELETE={max_delete}; none deleted"
        )
    else:
        for path in plan_.deletes:
            try:
                os.unlink(os.path.join(to, path))
                deleted += 1
            except OSError as exc:
                problems.append(f"{path}: {exc.strerror}")
        for path in plan_.rmdirs:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(to, path))
    for path in plan_.conflicts:
        problems.append(f"{path}: a file and a directory of the same name; left as is")
    fd = os.open(to, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return published, deleted, problems


def plan_publish_from(
    staged: Dict[str, Entry],
    served: Dict[str, Entry],
    patterns: Sequence[str],
    bad: Sequence[Finding],
) -> Plan:
    """Return the publish plan holding back every file with a failed finding."""
    return plan_publish(staged, served, patterns=patterns, failed=frozenset(f.path for f in bad))
