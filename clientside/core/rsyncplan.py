"""rsync: argv and environment building, exit-code classification, ``--stats`` parsing. Pure."""

import errno
import re
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from clientside.core.config import Source

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
MIN_RSYNC = (3, 4, 0)


def source_url(source: Source, module: str, user: Optional[str]) -> str:
    """Return ``rsync://[USER@]HOST[:PORT]/MODULE/``; a hub's with its own module and never
    the user (the credentials are the project's sources', not another mirror's)."""
    auth = f"{user}@" if user and not source.hub else ""
    port = f":{source.port}" if source.port is not None else ""
    return f"rsync://{auth}{source.host}{port}/{source.module or module}/"


def filter_rules(patterns: Sequence[str]) -> List[str]:
    """Given protected patterns, return paired rules: hide from the sender, protect locally."""
    rules: List[str] = []
    for pat in patterns:
        rules.append(f"--filter=H {pat}")
        rules.append(f"--filter=P {pat}")
    return rules


def build_argv(
    rsync: str,
    url: str,
    dest: str,
    *,
    patterns: Sequence[str],
    max_delete: int,
    timeout: int,
    contimeout: int,
) -> List[str]:
    """Return the rsync argv pulling ``url`` into ``dest`` (a directory, trailing slash added)."""
    return [
        rsync,
        "--recursive",
        "--links",
        "--safe-links",
        "--hard-links",
        "--times",
        "--perms",
        "--chmod=D755,F644",
        "--no-owner",
        "--no-group",
        "--no-devices",
        "--no-specials",
        "--delete",
        "--delete-delay",
        "--delay-updates",
        f"--max-delete={max_delete}",
        f"--timeout={timeout}",
        f"--contimeout={contimeout}",
        "--no-motd",
        "--stats",
        "--itemize-changes",
        *filter_rules(patterns),
        "--",
        url,
        dest.rstrip("/") + "/",
    ]


def build_env(home: str, password: Optional[str]) -> Dict[str, str]:
    """Return rsync's whole environment: nothing inherited, the password only here."""
    env = {"PATH": SAFE_PATH, "LC_ALL": "C", "LANG": "C", "HOME": home}
    if password is not None:
        env["RSYNC_PASSWORD"] = password
    return env


# -- exit codes ---------------------------------------------------------------------------------


class RsyncVerdict(NamedTuple):
    """What an rsync exit means for the round: ok, or which error and whether to fail over."""

    verdict: str  # ok | transient | permanent | local | failure | interrupted
    kind: Optional[str]  # the report's error kind, None when ok
    message: str
    failover: bool  # worth trying the next source


_TABLE: Dict[int, Tuple[str, Optional[str], str]] = {
    0: ("ok", None, "ok"),
    24: ("ok", None, "some source files vanished during the transfer"),
    10: ("transient", "rsync_transient", "error in socket I/O"),
    12: ("transient", "rsync_transient", "error in rsync protocol data stream"),
    30: ("transient", "rsync_transient", "timeout in data send/receive"),
    35: ("transient", "rsync_transient", "timeout waiting for daemon connection"),
    11: ("local", "disk_full", "error in file I/O (disk full?)"),
    25: ("local", "max_delete", "--max-delete limit stopped deletions: is the source empty?"),
    19: ("interrupted", "interrupted", "received SIGUSR1"),
    20: ("interrupted", "interrupted", "received SIGINT, SIGTERM, or SIGHUP"),
}
_FAILURES = {
    1: "syntax or usage error",
    2: "protocol incompatibility",
    3: "errors selecting input/output files, dirs",
    4: "requested action not supported",
    13: "errors with program diagnostics",
    14: "error in IPC code",
    15: "sibling process crashed",
    16: "sibling process terminated abnormally",
    21: "some error returned by waitpid()",
    22: "error allocating core memory buffers",
    23: "partial transfer due to error",
}


_DAEMON_ERRORS = (
    ("max connections", "transient", "rsync_busy", ""),
    ("auth failed", "permanent", "auth_failed", " (check RSYNC_USER and RSYNC_PASSWORD)"),
    ("unknown module", "permanent", "unknown_module", " (check MODULE)"),
)


def error_lines(output: str) -> List[str]:
    """Return rsync's ``@ERROR`` and ``rsync error:`` lines (bounded)."""
    found = [
        line.strip()
        for line in output.splitlines()
        if "@ERROR" in line or line.startswith("rsync: ") or line.startswith("rsync error:")
    ]
    return found[:10]


# -- a full disk (blocks, inodes or quota) --------------------------------------------------------

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
# strerror as rsync prints it under LC_ALL=C (BSD's libc spells "Disc")
_DISK_FULL_TEXT = ("No space left on device", "Disk quota exceeded", "Disc quota exceeded")


def disk_full_errno(code: Optional[int]) -> bool:
    """Return whether an OSError's errno says the disk is full: no block, no inode (both
    ENOSPC) or no quota left (EDQUOT)."""
    return code in DISK_FULL_ERRNOS


def disk_full_line(output: str) -> Optional[str]:
    """Return rsync's first line telling that our side ran out of space, inodes or quota, or
    None. The sender's lines (``[sender]``, the daemon's ``@ERROR``) are the source's, not ours.
    """
    for line in output.split("\n"):  # rsync's lines (str.splitlines also splits at \x1c-\x1e)
        if not line.startswith("rsync: ") or "[sender]" in line:
            continue
        if any(text in line for text in _DISK_FULL_TEXT):
            return line.strip()[:300]
    return None


def classify(exit_code: int, output: str) -> RsyncVerdict:
    """Given rsync's exit code and its captured output, return what it means for this run."""
    if exit_code not in (0, 5, 19, 20, 24) and exit_code > 0:
        full = disk_full_line(output)
        if full is not None:  # whichever code rsync chose (11, 12, 23): not worth a retry
            return RsyncVerdict("local", "disk_full", f"the disk is full: {full}", False)
    if exit_code == 5:
        text = output.lower()
        detail = next((ln for ln in error_lines(output) if "@ERROR" in ln), "")
        for needle, verdict, kind, hint in _DAEMON_ERRORS:
            if needle in text:
                return RsyncVerdict(verdict, kind, (detail or needle) + hint, True)
        return RsyncVerdict(
            "transient", "rsync_transient", detail or "error starting client-server protocol", True
        )
    if exit_code in _TABLE:
        verdict, table_kind, table_message = _TABLE[exit_code]
        # rsync's own line says why (getaddrinfo: ... not known, failed to connect ...)
        cause = next((ln[7:] for ln in error_lines(output) if ln.startswith("rsync: ")), "")
        if cause and verdict == "transient":
            table_message = f"{table_message}: {cause[:200]}"
        return RsyncVerdict(verdict, table_kind, table_message, verdict == "transient")
    if exit_code < 0:
        return RsyncVerdict("interrupted", "interrupted", f"killed by signal {-exit_code}", False)
    message = _FAILURES.get(exit_code, f"unknown rsync exit code {exit_code}")
    return RsyncVerdict("failure", "rsync_failed", message, True)


# -- output -------------------------------------------------------------------------------------


class Stats(NamedTuple):
    files_transferred: Optional[int]
    bytes_received: Optional[int]
    files_deleted: Optional[int]


_STAT_RE = re.compile(
    r"^(Number of regular files transferred|Total bytes received|"
    r"Number of deleted files): ([0-9,.]+)",
    re.MULTILINE,
)


def parse_stats(output: str) -> Stats:
    """Given rsync ``--stats`` output, return the figures the report needs (None if absent)."""
    found: Dict[str, int] = {}
    for m in _STAT_RE.finditer(output):
        digits = m.group(2).replace(",", "").replace(".", "")
        if digits:  # separators alone are not a figure
            found[m.group(1)] = int(digits)
    return Stats(
        found.get("Number of regular files transferred"),
        found.get("Total bytes received"),
        found.get("Number of deleted files"),
    )


_VERSION_RE = re.compile(r"rsync\s+version\s+v?([0-9]+)\.([0-9]+)\.([0-9]+)")


def parse_version(output: str) -> Optional[str]:
    """Given ``rsync --version`` output, return ``X.Y.Z`` or None."""
    m = _VERSION_RE.search(output)
    return ".".join(m.groups()) if m else None


def version_warning(version: Optional[str]) -> Optional[str]:
    """Return a warning when rsync is older than 3.4.0 (or its version is unknown)."""
    if version is None:
        return "rsync version unknown"
    parts = tuple(int(p) for p in version.split("."))
    if parts < MIN_RSYNC:
        return f"rsync {version} is older than 3.4.0 (security fixes); please upgrade"
    return None


def itemized(output: str, limit: int = 200) -> List[str]:
    """Return at most ``limit`` itemized change lines (``>f+++++++++ name`` and deletions)."""
    lines = [
        ln
        for ln in output.splitlines()
        if len(ln) > 12 and (ln[:1] in "<>ch.*" and ln[11:12] == " ")
    ]
    return lines[:limit]
