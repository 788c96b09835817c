"""The JSON report: the contract between clam-clientsync and the publisher. Pure."""

import json
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

REPORT_VERSION = 1

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 64
EXIT_TEMPFAIL = 75
EXIT_CONFIG = 78

# error kind -> (exit code, worth a retry by the publisher)
ERROR_KINDS: Dict[str, Any] = {
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
    "downgrade": (EXIT_FAILURE, False),
    "publish_failed": (EXIT_FAILURE, False),
    "no_report": (EXIT_FAILURE, False),
    "internal": (EXIT_FAILURE, False),
}

KEYS = (
    "report_version",
    "status",
    "verb",
    "run_id",
    "source_requested",
    "source_used",
    "attempts",
    "started_at",
    "finished_at",
    "duration_s",
    "files_transferred",
    "bytes_transferred",
    "files_deleted",
    "changes",
    "databases",
    "error",
    "warnings",
    "client_version",
    "rsync_version",
)


def rfc3339(moment: datetime) -> str:
    """Return ``moment`` as RFC 3339 UTC with milliseconds."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def new_report(
    verb: str, started_at: datetime, client_version: str, source_requested: Optional[str]
) -> Dict[str, Any]:
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


def set_error(report: Dict[str, Any], kind: str, message: str) -> None:
    """Record the run's error (the first one recorded wins for ``kind``)."""
    retryable = ERROR_KINDS.get(kind, (EXIT_FAILURE, False))[1]
    report["error"] = {"kind": kind, "message": message, "retryable": retryable}


def finish(
    report: Dict[str, Any], status: str, started_at: datetime, finished_at: datetime
) -> Dict[str, Any]:
    """Set the status and the end time; return the report."""
    report["status"] = status
    report["finished_at"] = rfc3339(finished_at)
    report["duration_s"] = round((finished_at - started_at).total_seconds(), 3)
    return report


def exit_code(report: Dict[str, Any]) -> int:
    """Return the process exit code the report's status and error call for."""
    if report["status"] in ("ok", "queued"):
        return EXIT_OK
    if report["status"] == "rejected":
        return EXIT_USAGE
    error = report.get("error") or {}
    return int(ERROR_KINDS.get(error.get("kind", "internal"), (EXIT_FAILURE, False))[0])


def render(report: Dict[str, Any]) -> str:
    """Return the report as one line of JSON."""
    return json.dumps(report, sort_keys=False, separators=(",", ":"), ensure_ascii=True)


def attempt(
    source: str, exit_code_: Optional[int], duration_s: float, error: Optional[str]
) -> Dict[str, Any]:
    """Return one entry of ``attempts``."""
    return {
        "source": source,
        "exit_code": exit_code_,
        "duration_s": round(duration_s, 3),
        "error": error,
    }


def redact(text: str, secrets: List[str]) -> str:
    """Return ``text`` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
