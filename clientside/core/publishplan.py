"""Which staged files to publish into the served tree, and which served files to remove. Pure.

The served tree ``TO`` is only ever changed by this plan: a file appears by a hard link to a
temporary name followed by a rename over the target, so a reader sees the old file or the new
one, never a partial one.
"""

import fnmatch
from typing import Dict, FrozenSet, List, NamedTuple, Sequence, Tuple

PRIVATE_DIR = ".clam-clientsync"
TEMP_PREFIX = ".clam-clientsync-tmp."


class Entry(NamedTuple):
    kind: str  # "file", "dir", "link"
    dev: int
    ino: int


class Plan(NamedTuple):
    mkdirs: List[str]
    publish: List[str]
    deletes: List[str]
    rmdirs: List[str]
    held_back: List[str]  # failed verification: the served one stays
    conflicts: List[str]  # a file where a directory is, or the reverse


def is_protected(relpath: str, patterns: Sequence[str]) -> bool:
    """Return whether ``relpath`` (no leading slash) or a parent matches a protected pattern."""
    parts = relpath.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pat in patterns:
        for prefix in prefixes:
            base = prefix.rsplit("/", 1)[-1]
            if pat.startswith("/"):
                if fnmatch.fnmatchcase(prefix, pat[1:]):
                    return True
            elif "/" in pat:
                if fnmatch.fnmatchcase(prefix, pat) or fnmatch.fnmatchcase(prefix, "*/" + pat):
                    return True
            elif fnmatch.fnmatchcase(base, pat):
                return True
    return False


def is_ours(relpath: str) -> bool:
    """Return whether ``relpath`` is our private directory or one of our temporary names."""
    first = relpath.split("/", 1)[0]
    base = relpath.rsplit("/", 1)[-1]
    return first == PRIVATE_DIR or base.startswith(TEMP_PREFIX)


def _publish_order(path: str) -> Tuple[int, str]:
    base = path.rsplit("/", 1)[-1]
    if base.endswith((".cvd", ".cud")):
        return (1, path)
    if base == "timestamp":
        return (2, path)
    return (0, path)


def plan_publish(
    staged: Dict[str, Entry],
    served: Dict[str, Entry],
    *,
    patterns: Sequence[str],
    failed: FrozenSet[str],
) -> Plan:
    """Given listings of staging and TO (relative paths), return the plan making TO match."""
    mkdirs: List[str] = []
    publish: List[str] = []
    held_back: List[str] = []
    conflicts: List[str] = []
    for path in sorted(staged):
        entry = staged[path]
        if is_ours(path) or is_protected(path, patterns):
            continue
        current = served.get(path)
        if entry.kind == "dir":
            if current is None:
                mkdirs.append(path)
            elif current.kind != "dir":
                conflicts.append(path)
            continue
        if current is not None and current.kind == "dir":
            conflicts.append(path)
            continue
        if current is not None and (current.dev, current.ino) == (entry.dev, entry.ino):
            continue
        if path in failed:
            held_back.append(path)
            continue
        publish.append(path)
    deletes: List[str] = []
    rmdirs: List[str] = []
    for path in sorted(served):
        if path in staged or path in failed or is_ours(path) or is_protected(path, patterns):
            continue
        (rmdirs if served[path].kind == "dir" else deletes).append(path)
    rmdirs.sort(key=lambda p: (-p.count("/"), p))
    publish.sort(key=_publish_order)
    return Plan(mkdirs, publish, deletes, rmdirs, held_back, conflicts)


def seed_paths(served: Dict[str, Entry], patterns: Sequence[str]) -> Tuple[List[str], List[str]]:
    """Return the directories and files of TO to hard-link into a new staging tree."""
    dirs: List[str] = []
    files: List[str] = []
    for path in sorted(served):
        if is_ours(path) or is_protected(path, patterns):
            continue
        (dirs if served[path].kind == "dir" else files).append(path)
    return dirs, [p for p in files if served[p].kind == "file"]
