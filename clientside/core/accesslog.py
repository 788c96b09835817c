"""What the mirror served, counted from its web server's access log. Pure.

The log is the combined format (nginx's default, Apache's ``combined``) or the old guide's
``combinedrealsize`` (the same fields with ``%O``, the bytes sent on the wire, in the size's
place): ``HOST IDENT USER [TIME] "REQUEST" STATUS SIZE "REFERER" "USER-AGENT"``, and any fields
after those are ignored. Every line is counted once: as a request (by file kind, status class
and freshclam version), as excluded (the monitor's ``ClamAV-MirrorCheck`` agent), or as
malformed (anything else: binary, cut, oversize, a negative size). The sums hold whatever the
bytes: ``lines == requests + excluded + malformed``, and the requests and bytes per kind, per
status class and per client add up to ``requests`` and ``bytes``.

The log is read incrementally by the I/O shell (``clientside.accesslog``): :class:`Scanner`
takes its bytes chunk by chunk and says how far it consumed whole lines, and
:func:`plan_reads` decides, from the position saved after the last report and what the log's
files are now, where to read from (rotation: a new inode, or a file shorter than the offset).
"""

import re
from typing import Dict, List, NamedTuple, Optional, Tuple

from pushwire.report import Traffic

KINDS = ("cvd", "cdiff", "sign", "other")
STATUS_CLASSES = ("2xx", "304", "3xx", "4xx", "5xx", "other")
LINE_MAX = 16 * 1024  # a longer line is malformed (a real one is a few hundred bytes)
SIZE_MAX = 1 << 40  # one response's bytes, at most (a larger figure is clamped)
CLIENTS_MAX = 16  # distinct freshclam versions told; more go to "other"
MIRROR_CHECK = "ClamAV-MirrorCheck"
ROTATED_SUFFIX = ".1"  # where logrotate (and savelog) put the file it rotated away

_QUOTED = r'"((?:[^"\\]|\\.){0,%d})"' % LINE_MAX
_LINE_RE = re.compile(
    r"(?P<host>\S{1,255}) \S{1,255} \S{1,255} \[(?P<time>[^\]]{1,64})\] "
    + _QUOTED.replace("(", "(?P<request>", 1)
    + r" (?P<status>[0-9]{3}) (?P<size>-|[0-9]{1,20}) "
    + _QUOTED.replace("(", "(?P<referer>", 1)
    + " "
    + _QUOTED.replace("(", "(?P<agent>", 1)
    + r"(?: .*)?\Z",
    re.DOTALL,
)
_FRESHCLAM_RE = re.compile(r"ClamAV/([0-9]{1,6})\.([0-9]{1,6})")


def file_kind(target: str) -> str:
    """Given a request target (``/daily-123.cdiff?x``), return its kind, one of KINDS."""
    path = target.split("?", 1)[0].split("#", 1)[0]
    name = path.rsplit("/", 1)[-1].lower()
    if name.endswith((".cvd", ".cld", ".cud")):
        return "cvd"
    if name.endswith(".cdiff"):
        return "cdiff"
    if name.endswith(".sign"):
        return "sign"
    return "other"


def status_class(status: int) -> str:
    """Given an HTTP status, return its class, one of STATUS_CLASSES."""
    if status == 304:
        return "304"
    for low, name in ((200, "2xx"), (300, "3xx"), (400, "4xx"), (500, "5xx")):
        if low <= status < low + 100:
            return name
    return "other"


def client_version(agent: str) -> str:
    """Given a User-Agent, return freshclam's major version (``1``, ``0.103`` for the 0.x
    series, whose minor versions were its major releases), or ``other``."""
    m = _FRESHCLAM_RE.match(agent)
    if not m:
        return "other"
    major, minor = int(m.group(1)), int(m.group(2))
    return f"0.{minor}" if major == 0 else str(major)


class Tally:
    """Counts of one stretch of the log. Every figure is a count of lines or a sum of clamped
    sizes: never negative."""

    def __init__(self) -> None:
        self.lines = 0
        self.requests = 0
        self.bytes = 0
        self.excluded = 0  # ClamAV-MirrorCheck requests
        self.malformed = 0
        self.kinds: Dict[str, List[int]] = {k: [0, 0] for k in KINDS}  # kind -> [requests, bytes]
        self.statuses: Dict[str, int] = {s: 0 for s in STATUS_CLASSES}
        self.clients: Dict[str, int] = {}

    def add(self, line: bytes) -> None:
        """Count one line (without its newline)."""
        self.lines += 1
        if len(line) > LINE_MAX:
            self.malformed += 1
            return
        m = _LINE_RE.match(line.decode("utf-8", "replace").rstrip("\r"))
        if m is None:
            self.malformed += 1
            return
        agent = m.group("agent")
        if agent.startswith(MIRROR_CHECK):
            self.excluded += 1
            return
        size = 0 if m.group("size") == "-" else min(int(m.group("size")), SIZE_MAX)
        parts = m.group("request").split(" ")
        kind = file_kind(parts[1]) if len(parts) >= 2 else "other"
        self.requests += 1
        self.bytes += size
        self.kinds[kind][0] += 1
        self.kinds[kind][1] += size
        self.statuses[status_class(int(m.group("status")))] += 1
        version = client_version(agent)
        if version not in self.clients and len(self.clients) >= CLIENTS_MAX - 1:
            version = "other"
        self.clients[version] = self.clients.get(version, 0) + 1

    def as_report(self, *, since: Optional[str], complete: bool) -> Traffic:
        """The counts as the report's ``traffic`` (``pushwire.report.Traffic``)."""
        return {
            "lines": self.lines,
            "requests": self.requests,
            "bytes": self.bytes,
            "excluded": self.excluded,
            "malformed": self.malformed,
            "kinds": {k: {"requests": r, "bytes": b} for k, (r, b) in self.kinds.items()},
            "statuses": dict(self.statuses),
            "clients": dict(sorted(self.clients.items())),
            "since": since,
            "complete": complete,
        }


class Scanner:
    """Feeds the lines of one file's bytes, chunk by chunk, to a Tally.

    ``consumed`` is how many of the bytes fed were whole lines (or the skipped part of an
    oversize one): the offset to resume at. A line longer than LINE_MAX is counted malformed
    once and skipped up to its newline (``skipping`` carries that over to the next read)."""

    def __init__(self, tally: Tally, *, skipping: bool = False) -> None:
        self.tally = tally
        self.skipping = skipping
        self.consumed = 0
        self._carry = b""

    def feed(self, data: bytes) -> None:
        buf = self._carry + data
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            if self.skipping:  # the end of an oversize line, already counted
                self.skipping = False
            else:
                self.tally.add(buf[start:nl])
            start = nl + 1
        self.consumed += start
        rest = buf[start:]
        if len(rest) > LINE_MAX:
            if not self.skipping:
                self.tally.lines += 1
                self.tally.malformed += 1
            self.skipping = True
            self.consumed += len(rest)
            rest = b""
        self._carry = rest

    def end_of_file(self) -> None:
        """The file gets no more lines (it was rotated away): its last line counts, cut or not."""
        if self._carry and not self.skipping:
            self.tally.add(self._carry)
        self.consumed += len(self._carry)
        self._carry = b""
        self.skipping = False


class FileFacts(NamedTuple):
    dev: int
    ino: int
    size: int


class Position(NamedTuple):
    """Where the last report stopped: the file (device, inode), the offset, and whether an
    oversize line is being skipped there."""

    dev: int
    ino: int
    offset: int
    skipping: bool = False


class Read(NamedTuple):
    which: str  # "rotated" (ACCESS_LOG.1) or "current" (ACCESS_LOG)
    offset: int
    skipping: bool


def plan_reads(
    saved: Optional[Position], current: Optional[FileFacts], rotated: Optional[FileFacts]
) -> Tuple[List[Read], Optional[str]]:
    """Given where the last report stopped and the log's files now (None: missing), return
    what to read, in order, and a warning when lines may have been lost.

    The same file, not shorter: on from the offset. The same file, shorter: it was truncated
    (copytruncate), so from its start. Another file: the log was rotated; the rest of the old
    one is read first when ``.1`` is it, else it is gone and the new one is read whole."""
    if current is None:
        return [], "the access log does not exist (yet): nothing counted"
    if saved is None:
        return [Read("current", 0, False)], None
    if (saved.dev, saved.ino) == (current.dev, current.ino):
        if current.size >= saved.offset:
            return [Read("current", saved.offset, saved.skipping)], None
        return [Read("current", 0, False)], (
            "the access log shrank (truncated in place): counted from its start again; lines "
            "written between the last report and the truncation are lost"
        )
    if rotated is not None and (saved.dev, saved.ino) == (rotated.dev, rotated.ino):
        reads = []
        if rotated.size > saved.offset:
            reads.append(Read("rotated", saved.offset, saved.skipping))
        return [*reads, Read("current", 0, False)], None
    return [Read("current", 0, False)], (
        f"the access log was rotated and its previous file is not {ROTATED_SUFFIX} beside it "
        "(compressed or rotated twice since the last report): its last lines are not counted"
    )
