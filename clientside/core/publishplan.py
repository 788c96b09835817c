"""Which staged files to publish into the served tree, and which served files to remove. Pure.

The served tree ``TO`` is only ever changed by this plan: a file appears by a hard link to a
temporary name followed by a rename over the target, so a reader sees the old file or the new
one, never a partial one.

What a source can never make the plan do: publish below a served parent that is not a real
directory of TO (a symlink, a file), publish a link under a name that must be verified or a link
that leaves the plain names of the tree, publish a name the web server could interpret (a dot
name, a server script or config), or delete anything in a round that holds something back.
"""

import fnmatch
from typing import Dict, FrozenSet, List, NamedTuple, Optional, Sequence, Tuple

from clientside.core.cvd import VERIFIED_SUFFIXES, is_checked_name

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
    # below a served parent that is not a real directory of TO: (path, that parent)
    unsafe: List[Tuple[str, str]]
    # names never published, whatever the source says: (path, why); the served one stays
    refused: List[Tuple[str, str]]
    # what would have been deleted had nothing been held back: deleted in a later round
    kept: List[str]


# Extensions a web server may run or read as its own instructions. Apache's mod_mime applies
# every extension of a name (``x.php.cvd`` runs as PHP where ``AddHandler .php`` is set), so
# each dotted part of a name counts, not only the last.
# fmt: off
SCRIPT_EXTENSIONS = frozenset(
    [
        "php", "php3", "php4", "php5", "php7", "php8", "phtml", "pht", "phar", "phps",
        "cgi", "fcgi", "pl", "pm", "py", "rb", "sh", "lua", "asp", "aspx", "ashx", "asmx",
        "axd", "cer", "jsp", "jspx", "cfm", "shtml", "shtm", "stm", "ssi", "htaccess",
        "htpasswd",
    ]
)
# fmt: on
SERVER_FILES = frozenset(("web.config", "crossdomain.xml", "clientaccesspolicy.xml"))


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


def server_interpretable(relpath: str) -> Optional[str]:
    """Return why a web server could interpret ``relpath`` (a dot name anywhere in the path, a
    server script or config name), or None. No name of a release (``NAME.cvd``,
    ``NAME-N.cdiff``, ``NAME-N.cvd.sign``, ``timestamp``) is one."""
    parts = relpath.split("/")
    for part in parts:
        if part.startswith("."):
            return f"{part!r} is a dot name (a web server may read it as its configuration)"
    base = parts[-1].lower()
    if base in SERVER_FILES:
        return f"{parts[-1]!r} is a web server's configuration name"
    for ext in base.split(".")[1:]:
        if ext in SCRIPT_EXTENSIONS:
            return f"{parts[-1]!r} has the extension .{ext} a web server may run"
    return None


def link_problem(relpath: str, target: str, patterns: Sequence[str]) -> Optional[str]:
    """Return why the staged symlink ``relpath -> target`` may not be published, or None.

    A link is published only under a name that needs no verification, when its target is a
    plain relative path (no ``/`` at either end, no ``.``/``..`` parts), inside the link's
    directory or below it, and not at a name the client never publishes (ours, protected, one a
    web server could interpret)."""
    base = relpath.rsplit("/", 1)[-1]
    if is_checked_name(base):
        return "a database, cdiff or sign name must be a regular file"
    parts = target.split("/")
    if not target or any(p in ("", ".", "..") for p in parts):
        return f"target {target!r} is not a plain relative path"
    resolved = "/".join(relpath.split("/")[:-1] + parts)
    if is_ours(resolved) or is_protected(resolved, patterns) or server_interpretable(resolved):
        return f"target {target!r} is a name that is never published"
    return None


def _served_parent_problem(path: str, served: Dict[str, Entry]) -> Optional[str]:
    """Return the first parent of ``path`` that TO has as something other than a directory."""
    parts = path.split("/")
    for i in range(1, len(parts)):
        parent = "/".join(parts[:i])
        current = served.get(parent)
        if current is not None and current.kind != "dir":
            return parent
    return None


def _publish_order(path: str) -> Tuple[int, str]:
    base = path.rsplit("/", 1)[-1]
    if base.endswith(VERIFIED_SUFFIXES):
        return (1, path)
    if base == "timestamp":
        return (2, path)
    return (0, path)


def _place(
    path: str, entry: Entry, served: Dict[str, Entry], failed: FrozenSet[str]
) -> Tuple[str, str]:
    """Return where a staged entry goes in the plan: ``mkdir``, ``publish``, ``same`` (TO has
    it), ``held_back``, ``conflict``, ``unsafe`` (with the parent) or ``refused`` (with why)."""
    reason = server_interpretable(path)
    if reason:
        return "refused", reason
    parent = _served_parent_problem(path, served)
    if parent is not None:
        return "unsafe", parent
    if path in failed:
        return "held_back", ""
    return _compare(path, entry, served.get(path)), ""


def _compare(path: str, entry: Entry, current: Optional[Entry]) -> str:
    if entry.kind == "dir":
        if current is None:
            return "mkdir"
        return "same" if current.kind == "dir" else "conflict"
    if current is not None and current.kind == "dir":
        return "conflict"
    if current is not None and (current.dev, current.ino) == (entry.dev, entry.ino):
        return "same"
    if entry.kind == "link" and is_checked_name(path.rsplit("/", 1)[-1]):
        return "held_back"  # verification says so too: a link is never verified
    return "publish"


def plan_publish(
    staged: Dict[str, Entry],
    served: Dict[str, Entry],
    *,
    patterns: Sequence[str],
    failed: FrozenSet[str],
) -> Plan:
    """Given listings of staging and TO (relative paths), return the plan making TO match.

    Nothing is deleted when anything fails (a verification finding, staged or not, a conflict,
    an unsafe parent): the deletions wait for a round that publishes the whole release."""
    places: Dict[str, List[str]] = {
        k: [] for k in ("mkdir", "publish", "same", "held_back", "conflict")
    }
    unsafe: List[Tuple[str, str]] = []
    refused: List[Tuple[str, str]] = []
    skipped: List[str] = []  # staged directories not made in TO: their contents wait too
    for path in sorted(staged):
        entry = staged[path]
        if is_ours(path) or is_protected(path, patterns):
            continue
        if any(path.startswith(d + "/") for d in skipped):
            continue
        place, detail = _place(path, entry, served, failed)
        if place == "unsafe":
            unsafe.append((path, detail))
        elif place == "refused":
            refused.append((path, detail))
        else:
            places[place].append(path)
        if entry.kind == "dir" and place not in ("mkdir", "same"):
            skipped.append(path)
    deletes: List[str] = []
    rmdirs: List[str] = []
    for path in sorted(served):
        if path in staged or path in failed or is_ours(path) or is_protected(path, patterns):
            continue
        if server_interpretable(path):
            continue  # never published by us: the admin's own (an .htaccess), never deleted
        (rmdirs if served[path].kind == "dir" else deletes).append(path)
    rmdirs.sort(key=lambda p: (-p.count("/"), p))
    kept: List[str] = []
    held_back, conflicts = places["held_back"], places["conflict"]
    if failed or conflicts or unsafe:  # ``failed`` also names what staging lacks
        kept = deletes + rmdirs
        deletes, rmdirs = [], []
    publish = sorted(places["publish"], key=_publish_order)
    return Plan(
        places["mkdir"], publish, deletes, rmdirs, held_back, conflicts, unsafe, refused, kept
    )


def seed_paths(served: Dict[str, Entry], patterns: Sequence[str]) -> Tuple[List[str], List[str]]:
    """Return the directories and files of TO to hard-link into a new staging tree."""
    dirs: List[str] = []
    files: List[str] = []
    for path in sorted(served):
        if is_ours(path) or is_protected(path, patterns):
            continue
        (dirs if served[path].kind == "dir" else files).append(path)
    return dirs, [p for p in files if served[p].kind == "file"]
