"""The mirror client's report (one JSON object on stdout, ``pushwire.report``), parsed as the
untrusted input it is: bounded, validated, tolerant of keys a newer client adds, every string
cleaned (`syncd.text.clean`: surrogates, controls, bidi and format characters, length)
before anything is stored, logged or shown. Pure.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from pushwire.report import REPORT_VERSION
from syncd.text import clean


class ReportError(ValueError):
    """stdout is not one valid report; the message says why (safe to show)."""


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > 8:
        return None
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean(str(k), 100): _scrub(v, depth + 1) for k, v in list(value.items())[:200]}
    if isinstance(value, list):
        return [_scrub(v, depth + 1) for v in value[:200]]
    return value


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Database(_Tolerant):
    version: int | None = None
    build_time: str | int | float | None = None
    signatures: int | None = None
    md5_ok: bool | None = None


class ReportErrorInfo(_Tolerant):
    kind: str = "unknown"
    message: str = ""


class Report(_Tolerant):
    report_version: int
    status: Literal["ok", "queued", "failed", "rejected"]  # pushwire.report.STATUSES
    verb: str | None = None
    run_id: str | None = None
    source_requested: str | None = None
    source_used: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    databases: dict[str, Database] = {}
    error: ReportErrorInfo | None = None
    client_version: str | None = None

    def versions(self) -> dict[str, int]:
        return {db: d.version for db, d in self.databases.items() if d.version is not None}

    def serves(self, expected: Mapping[str, int]) -> bool:
        """Return whether the report shows every expected database at (or past) its version."""
        have = self.versions()
        return all(have.get(db, -1) >= v for db, v in expected.items())

    def other_run(self, run_id: str) -> str:
        """Return why this report is no answer to the request of run `run_id` ('' when it is
        one): it names another run. A report that names none (a request rejected before its
        run id was read, a client that sends none) is judged on what it says."""
        if self.run_id is None or self.run_id == run_id:
            return ""
        return (
            f"the report answers run {self.run_id!r}, not the request of run {run_id}: "
            "the mirror's client mixed up pushes"
        )

    def error_text(self) -> str:
        if self.error is None:
            return ""
        return f"{self.error.kind}: {self.error.message}" if self.error.message else self.error.kind


def _no_constant(name: str) -> Any:
    raise ReportError(f"stdout JSON holds {name}, which is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ReportError(f"stdout JSON holds the number {clean(text, 40)}, too large for a float")
    return value


def loads_strict(text: str) -> Any:
    """Given JSON text, return its value; raise ReportError for what strict JSON has no room
    for (NaN, Infinity, a float that overflows), an integer past Python's digit limit, or
    JSON that is not valid or nested too deeply."""
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except ReportError:
        raise
    except json.JSONDecodeError:
        raise ReportError(f"stdout is not one JSON object: {clean(text, 120)!r}") from None
    except RecursionError:
        raise ReportError("stdout JSON is nested too deeply") from None
    except ValueError as err:  # an integer of more digits than sys.get_int_max_str_digits()
        raise ReportError(f"stdout JSON holds an unusable number: {clean(str(err), 120)}") from None


def parse_report(stdout: bytes) -> tuple[Report, dict[str, Any]]:
    """Given the client's stdout, return the report and its cleaned JSON; raise ReportError."""
    text = stdout.decode("utf-8", errors="replace").strip()
    if not text:
        raise ReportError("no report on stdout")
    raw = loads_strict(text)
    if not isinstance(raw, dict):
        raise ReportError("stdout JSON is not an object")
    scrubbed = _scrub(raw)
    version = scrubbed.get("report_version")
    if isinstance(version, int) and version > REPORT_VERSION:
        raise ReportError(
            f"report_version {version} is newer than this syncd understands ({REPORT_VERSION}):"
            " upgrade syncd"
        )
    try:
        report = Report.model_validate(scrubbed)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ReportError(f"report field {where}: {clean(first['msg'], 200)}") from None
    return report, scrubbed


def dumps_strict(value: Any, *, sort_keys: bool = False) -> str:
    """Return `value` as strict JSON: a float that JSON cannot carry (NaN, an infinity, from a
    record written before reports were parsed strictly) becomes null, and anything else that
    is not JSON raises ValueError rather than being written."""
    try:  # most documents hold no such float: dumped as they are, without a copy
        return json.dumps(value, allow_nan=False, sort_keys=sort_keys)
    except ValueError:
        return json.dumps(_finite_only(value), allow_nan=False, sort_keys=sort_keys)


def _finite_only(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_only(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_only(v) for v in value]
    return value
