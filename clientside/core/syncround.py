"""What one sync round found, and the one place where it becomes the report's keys. Pure.

A round answers for the whole of its own keys: the source used, the transfer's figures, the
deletions and the error are the last round's; its attempts and warnings are added to those of
the rounds before; what ``TO`` serves is described when the round could read it."""

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from pushwire.report import Attempt, CdiffSpan, Database, Report, set_error


@dataclass(frozen=True)
class TransferStats:
    """What the rsync that was used moved (``--stats``, ``--itemize-changes``)."""

    files_transferred: int = 0
    bytes_transferred: int = 0
    changes: Tuple[str, ...] = ()


@dataclass(frozen=True)
class RoundResult:
    """One round: ``errors`` holds (kind, message) pairs, the first the round's error and the
    others told as warnings; ``databases`` and ``release_files`` (the report's ``cdiffs`` and
    ``signs``) are None when ``TO`` was not described (the report keeps what it had); ``ended``
    is False for a round an exception broke off, whose status and error are the exception's
    to tell."""

    source_used: Optional[str] = None
    attempts: Tuple[Attempt, ...] = ()
    stats: TransferStats = TransferStats()
    files_deleted: int = 0
    databases: Optional[Dict[str, Database]] = None
    release_files: Optional[Tuple[Dict[str, CdiffSpan], List[str]]] = None
    warnings: Tuple[str, ...] = ()
    errors: Tuple[Tuple[str, str], ...] = ()
    ended: bool = True

    @property
    def status(self) -> str:
        return "failed" if self.errors else "ok"


def report_round(report: Report, result: RoundResult) -> None:
    """Write ``result`` into ``report``: the round's own keys, its attempts and warnings added,
    and (for a round that ended) its status and error."""
    report["error"] = None
    report["source_used"] = result.source_used
    report["files_transferred"] = result.stats.files_transferred
    report["bytes_transferred"] = result.stats.bytes_transferred
    report["files_deleted"] = result.files_deleted
    report["changes"] = list(result.stats.changes)
    report["attempts"].extend(result.attempts)
    report["warnings"].extend(result.warnings)
    if result.databases is not None:
        report["databases"] = result.databases
    if result.release_files is not None:
        report["cdiffs"], report["signs"] = result.release_files
    if not result.ended:
        return
    if result.errors:
        kind, message = result.errors[0]
        set_error(report, kind, message)
        report["warnings"].extend(f"{k}: {m}" for k, m in result.errors[1:])
    report["status"] = result.status
