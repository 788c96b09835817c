"""The ``status`` verb: the last saved report, or (before any sync) what ``TO`` serves now."""

import json
import os
from typing import Any, Dict, Optional

from clientside.core.config import Config
from clientside.fsutil import atomic_write, read_small
from clientside.statedir import LAST_REPORT_NAME
from clientside.verification import Verifier, served_databases, served_release_files
from pushwire import report
from pushwire.report import Report


def save_report(state_dir: str, rep: Report) -> None:
    """Keep ``rep`` as the last report, for ``status``; raise OSError."""
    atomic_write(os.path.join(state_dir, LAST_REPORT_NAME), report.render(rep).encode())


def last_report(state_dir: str) -> Optional[str]:
    """Return the last saved report, verbatim, or None before any sync has completed."""
    raw = read_small(os.path.join(state_dir, LAST_REPORT_NAME))
    return raw.decode("utf-8").strip() if raw else None


def describe_served(rep: Report, config: Config) -> None:
    """Fill ``rep`` with what TO serves, for a status asked before any sync completed."""
    rep["status"] = "ok"
    rep["warnings"].append("no sync has completed yet")
    rep["databases"] = served_databases(Verifier(config.state_dir), config.to)
    rep["cdiffs"], rep["signs"] = served_release_files(config.to)


def with_maintenance(saved: str, notice: Optional[Dict[str, Any]]) -> str:
    """Return the saved report with ``maintenance`` as TO serves it now (the notice may have
    changed since that sync); verbatim when it cannot be read as a JSON object."""
    try:
        value = json.loads(saved)
    except ValueError:
        return saved
    if not isinstance(value, dict):
        return saved
    value["maintenance"] = notice
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)
