"""The vocabulary of a push: final outcomes per mirror and verdicts per attempt."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class PushOutcome(StrEnum):
    """A mirror's final outcome in one run (the ``--json`` contract's ``outcome``)."""

    OK = "ok"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    AUTH_FAILED = "auth_failed"
    HOST_KEY_MISMATCH = "host_key_mismatch"
    CANCELLED = "cancelled"


class Verdict(StrEnum):
    """What to do after one attempt."""

    OK = "ok"  # done: the mirror serves the release
    QUEUED = "queued"  # accepted, a sync is running: poll with ``status``
    RETRY = "retry"  # transient: try again after a backoff, if the deadline allows
    FAIL = "fail"  # permanent: stop and record the outcome


@dataclass(frozen=True)
class MirrorPushState:
    """A mirror's current state in the publish record: its last push and its last ok one."""

    mirror: str
    run_id: str
    outcome: str
    at: float
    last_ok_at: float | None
    versions: Mapping[str, int] | None  # what its last ok report served
    duration_s: float | None


@dataclass(frozen=True)
class RunRow:
    run_id: str
    started_at: float
    finished_at: float | None
    state: str
    expected: dict[str, int]
    request: str
    inventory: str | None
    invocations: int
    kind: str = "release"  # or "heartbeat"
    heartbeat_stamp: int | None = None  # the timestamp a heartbeat run pushed


@dataclass(frozen=True)
class TargetRow:
    mirror: str
    outcome: str | None
    attempts: int
    error: str | None
    report: dict[str, Any] | None
    finished_at: float | None
