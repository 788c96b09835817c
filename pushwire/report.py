"""The client's JSON report: the contract between clam-clientsync and syncd. Pure.

The client prints exactly one report on stdout and exits with the code its status and error
call for. Clients and syncd are upgraded at different times: keys are only ever added, and
``REPORT_VERSION`` changes when a key's meaning does. syncd reads reports tolerantly (unknown
keys are kept, missing optional keys are defaults).
"""

import json
from datetime import datetime, timezone
from typing import Dict, List, Optional, Tuple, TypedDict

REPORT_VERSION = 1
STATUSES = ("ok", "queued", "failed", "rejected")

EXIT_OK = 0  # ok or queued
EXIT_FAILURE = 1
EXIT_USAGE = 64  # EX_USAGE: a rejected request, a bad command line
EXIT_TEMPFAIL = 75  # EX_TEMPFAIL: worth another attempt
EXIT_CONFIG = 78  # EX_CONFIG

# error kind -> (exit code, worth a retry by the publisher)
ERROR_KINDS: Dict[str, Tuple[int, bool]] = {
    "usage": (EXIT_USAGE, False),
    "rejected": (EXIT_USAGE, False),
    "config": (EXIT_CONFIG, False),
    "rsync_transient": (EXIT_TEMPFAIL, True),
    "rsync_busy": (EXIT_TEMPFAIL, True),
    "deadline": (EXIT_TEMPFAIL, True),
    "interrupted": (EXIT_TEMPFAIL, True),
    "expectation_unmet": (EXIT_TEMPFAIL, True),
    "auth_failed": (EXIT_FAILURE, False),
    "unknown_module": (EXIT_FAILURE, False),
    "rsync_failed": (EXIT_FAILURE, True),
    "disk_full": (EXIT_FAILURE, False),
    "max_delete": (EXIT_FAILURE, False),
    "empty_source": (EXIT_FAILURE, False),
    "corrupt_cvd": (EXIT_FAILURE, True),
    "corrupt_file": (EXIT_FAILURE, True),  # a cdiff or sign file that is not whole
    "incoherent": (EXIT_TEMPFAIL, True),  # a cdiff or sign file past the CVD beside it
    "downgrade": (EXIT_FAILURE, False),
    "pin_mismatch": (EXIT_FAILURE, True),  # a hub handed over a CVD that is not the release's
    "publish_failed": (EXIT_FAILURE, False),
    "no_report": (EXIT_FAILURE, False),
    "internal": (EXIT_FAILURE, False),
}
_UNKNOWN_KIND = (EXIT_FAILURE, False)


class Attempt(TypedDict):
    source: str
    exit_code: Optional[int]  # None when the client killed rsync at its deadline
    duration_s: float
    error: Optional[str]


class Database(TypedDict):
    file: str
    version: Optional[int]
    build_time: Optional[str]  # RFC 3339 UTC
    signatures: Optional[int]
    md5_ok: bool


class CdiffSpan(TypedDict):
    first: int  # lowest version of ``NAME-N.cdiff`` served
    last: int  # highest
    count: int  # how many: fewer than last - first + 1 means gaps


class KindFigures(TypedDict):
    requests: int
    bytes: int


class Traffic(TypedDict):
    """What the mirror's web server served since the last report (``ACCESS_LOG=``), without
    the monitor's ``ClamAV-MirrorCheck`` requests: ``lines == requests + excluded +
    malformed``; ``kinds`` (cvd, cdiff, sign, other), ``statuses`` (2xx, 304, 3xx, 4xx, 5xx,
    other) and ``clients`` (freshclam's major version: ``1``, ``0.103``, ..., ``other``) each
    add up to ``requests``."""

    lines: int
    requests: int
    bytes: int
    excluded: int
    malformed: int
    kinds: Dict[str, KindFigures]
    statuses: Dict[str, int]
    clients: Dict[str, int]
    since: Optional[str]  # the previous report's start (RFC 3339), None at the first
    complete: bool  # False: more was logged than one sync reads; the next one goes on


class ErrorInfo(TypedDict):
    kind: str  # one of ERROR_KINDS
    message: str
    retryable: bool


class _Keys(TypedDict):
    report_version: int
    status: str  # one of STATUSES
    verb: Optional[str]  # None when the request was rejected before its verb was known
    run_id: Optional[str]
    source_requested: Optional[str]
    source_used: Optional[str]
    attempts: List[Attempt]
    started_at: str  # RFC 3339 UTC, milliseconds
    finished_at: Optional[str]
    duration_s: Optional[float]
    files_transferred: int
    bytes_transferred: int
    files_deleted: int
    changes: List[str]  # at most 50 itemized rsync lines
    databases: Dict[str, Database]
    error: Optional[ErrorInfo]
    warnings: List[str]
    client_version: str
    rsync_version: Optional[str]


class Report(_Keys, total=False):
    rounds: int  # sync only: how many rounds the queued pushes took
    # optional keys (report_version stays 1; older clients omit them): what TO serves beside
    # the CVDs
    cdiffs: Dict[str, CdiffSpan]  # per database, the served cdiff range
    signs: List[str]  # the served sign files, sorted
    # the maintenance window TO announces (``local_maintenance``, pushwire.maintenance's JSON
    # object), None when none is announced or it is over; every report of a newer client
    maintenance: Optional[Dict[str, object]]
    traffic: Traffic  # sync with ACCESS_LOG= only: what was served since the last report


KEYS = tuple(_Keys.__annotations__)  # every report has these, in this order


def rfc3339(moment: datetime) -> str:
    """Return ``moment`` as RFC 3339 UTC with milliseconds."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def new_report(
    verb: str, started_at: datetime, client_version: str, source_requested: Optional[str]
) -> Report:
    """Return a report with every contract key, as for a run that has not done anything yet."""
    return {
        "report_version": REPORT_VERSION,
        "status": "failed",
        "verb": verb,
        "run_id": None,
        "source_requested": source_requested,
        "source_used": None,
        "attempts": [],
        "started_at": rfc3339(started_at),
        "finished_at": None,
        "duration_s": None,
        "files_transferred": 0,
        "bytes_transferred": 0,
        "files_deleted": 0,
        "changes": [],
        "databases": {},
        "error": None,
        "warnings": [],
        "client_version": client_version,
        "rsync_version": None,
    }


def set_error(report: Report, kind: str, message: str) -> None:
    """Record the run's error, with whether the publisher may retry it."""
    retryable = ERROR_KINDS.get(kind, _UNKNOWN_KIND)[1]
    report["error"] = {"kind": kind, "message": message, "retryable": retryable}


def finish(report: Report, status: str, started_at: datetime, finished_at: datetime) -> Report:
    """Set the status and the end time; return the report."""
    report["status"] = status
    report["finished_at"] = rfc3339(finished_at)
    report["duration_s"] = round((finished_at - started_at).total_seconds(), 3)
    return report


def exit_code(report: Report) -> int:
    """Return the process exit code the report's status and error call for."""
    if report["status"] in ("ok", "queued"):
        return EXIT_OK
    if report["status"] == "rejected":
        return EXIT_USAGE
    error = report.get("error")
    return ERROR_KINDS.get(error["kind"] if error else "internal", _UNKNOWN_KIND)[0]


def render(report: Report) -> str:
    """Return the report as one line of JSON (ASCII)."""
    return json.dumps(report, separators=(",", ":"), ensure_ascii=True)


def attempt(
    source: str, exit_code_: Optional[int], duration_s: float, error: Optional[str]
) -> Attempt:
    """Return one entry of ``attempts``."""
    return {
        "source": source,
        "exit_code": exit_code_,
        "duration_s": round(duration_s, 3),
        "error": error,
    }
