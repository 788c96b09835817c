"""The end of a publish: per-mirror results, the ``--json`` document, and the summary grouped by
problem with the next action for each group. Pure.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from syncd.publish.outcome import PushOutcome


class Proof(StrEnum):
    """What an ok rests on (the ``--json`` contract's ``proof``)."""

    HTTP = "http"  # the mirror was seen serving the release over HTTP
    UNPROVEN = "unproven"  # the mirror's own report alone: no http URL, or the check is off


@dataclass(frozen=True)
class MirrorResult:
    name: str
    outcome: PushOutcome
    attempts: int
    error: str | None
    report: dict[str, Any] | None = None
    host: str = ""
    port: int = 22
    admins: tuple[str, ...] = ()
    proof: Proof | None = None  # for an ok: how it is known; None otherwise


@dataclass(frozen=True)
class Group:
    outcome: PushOutcome
    title: str
    mirrors: list[MirrorResult]
    actions: list[str] = field(default_factory=list)


TITLES = {
    PushOutcome.HOST_KEY_MISMATCH: (
        "HOST KEY CHANGED OR UNKNOWN (not retried; possible impersonation)"
    ),
    PushOutcome.AUTH_FAILED: "our key was refused",
    PushOutcome.UNREACHABLE: "unreachable",
    PushOutcome.TIMEOUT: "no answer before the deadline",
    PushOutcome.FAILED: "failed",
    PushOutcome.CANCELLED: "cancelled",
    PushOutcome.OK: "serve the release",
}
ORDER = [
    PushOutcome.HOST_KEY_MISMATCH,
    PushOutcome.AUTH_FAILED,
    PushOutcome.FAILED,
    PushOutcome.TIMEOUT,
    PushOutcome.UNREACHABLE,
    PushOutcome.CANCELLED,
    PushOutcome.OK,
]


def _actions(outcome: PushOutcome, mirrors: Sequence[MirrorResult], run_id: str) -> list[str]:
    resume = f"syncd publish --resume {run_id}"
    if outcome is PushOutcome.HOST_KEY_MISMATCH:
        out = []
        for m in mirrors:
            who = ", ".join(m.admins) or "its admin"
            out.append(
                f"{m.name}: confirm the new host key's fingerprint with {who} "
                f"(ssh-keyscan -p {m.port} {shlex.quote(m.host)} | ssh-keygen -lf -), then re-pin: "
                f"syncd mirrors pin {m.name} --host-key 'ssh-ed25519 AAAA...'"
            )
        return out
    if outcome is PushOutcome.TIMEOUT:
        login = [m for m in mirrors if _no_login(m)]
        actions = [TIMEOUT_LOGIN] if login else []
        if len(login) < len(mirrors):
            actions.append(TIMEOUT_COMMAND)
        return [f"{action}; then {resume}" for action in actions]
    return [f"{action}; then {resume}" for action in _NEXT.get(outcome, ())]


# A timeout before the login ended (syncd.errors.HandshakeTimeout): no client ran.
HANDSHAKE_TIMEOUTS = ("connect or login timed out", "no login within")
TIMEOUT_LOGIN = (
    "no client ran where connect or login timed out: check the host and port in the inventory "
    "and ask the admins whether sshd answers (ssh -p PORT clamavdb@HOST from here)"
)
TIMEOUT_COMMAND = "the mirror's client keeps running under its own deadline: check its log"


def _no_login(m: MirrorResult) -> bool:
    return m.report is None and any(t in (m.error or "") for t in HANDSHAKE_TIMEOUTS)


_NEXT: dict[PushOutcome, tuple[str, ...]] = {
    PushOutcome.AUTH_FAILED: (
        "ask the admins to install the current authorized_keys line for the pusher key "
        "(syncd keys render); if it is installed, the account may be locked (sshd refuses "
        "a locked account's keys too): ask them to run doctor as root for the account, "
        "runuser -u clamavdb -G shadow -- ~clamavdb/bin/clam-clientsync --doctor, which "
        "names the fix (docs/operators-guide.md, The account)",
    ),
    PushOutcome.UNREACHABLE: (
        "check the host and port in the inventory and ask the admins whether sshd is up",
    ),
    PushOutcome.FAILED: ("read each error above and the mirror's log, and fix the cause",),
    PushOutcome.CANCELLED: ("nothing to fix",),
}


def group(results: Sequence[MirrorResult], run_id: str) -> list[Group]:
    """Return the results grouped by outcome, problems first, each with its next actions."""
    groups = []
    for outcome in ORDER:
        members = sorted((r for r in results if r.outcome is outcome), key=lambda r: r.name)
        if members:
            groups.append(
                Group(outcome, TITLES[outcome], members, _actions(outcome, members, run_id))
            )
    return groups


UNPROVEN_SHOWN = 8  # names on the unproven line; the rest are counted


def unproven_lines(results: Sequence[MirrorResult]) -> list[str]:
    """The line naming the ok mirrors that only their own report vouches for (none if none):
    the count and the first few names; ``--json`` has every mirror's ``proof``."""
    unproven = sorted(r.name for r in results if r.proof is Proof.UNPROVEN)
    if not unproven:
        return []
    names = ", ".join(unproven[:UNPROVEN_SHOWN])
    if len(unproven) > UNPROVEN_SHOWN:
        names += f" and {len(unproven) - UNPROVEN_SHOWN} more (--json gives each one's proof)"
    return [f"  unproven ({len(unproven)}, ok on their own report, not checked over HTTP): {names}"]


def summary_lines(results: Sequence[MirrorResult], run_id: str) -> list[str]:
    """Return the plain-text summary: a headline, then each group with its mirrors and actions."""
    ok = sum(r.outcome is PushOutcome.OK for r in results)
    lines = [f"run {run_id}: {ok} of {len(results)} mirrors serve the release"]
    for g in group(results, run_id):
        if g.outcome is PushOutcome.OK:
            lines.append(f"{g.title}: {len(g.mirrors)}")
            lines.extend(unproven_lines(g.mirrors))
            continue
        lines.append(f"{g.title} ({len(g.mirrors)}):")
        for r in g.mirrors:
            lines.append(f"  {r.name}: {r.error or g.outcome.value} [{r.attempts} attempt(s)]")
        lines.extend(f"  next: {a}" for a in g.actions)
    return lines


def to_json(
    run_id: str, expected: dict[str, int], results: Sequence[MirrorResult]
) -> dict[str, Any]:
    """Return the ``syncd publish --json`` document (the contract)."""
    return {
        "run_id": run_id,
        "expected": dict(sorted(expected.items())),
        "mirrors": [
            {
                "name": r.name,
                "outcome": r.outcome.value,
                "attempts": r.attempts,
                "error": r.error,
                "report": r.report,
                "proof": r.proof.value if r.proof else None,
            }
            for r in sorted(results, key=lambda r: r.name)
        ],
    }


def exit_code(results: Sequence[MirrorResult]) -> int:
    """0 when every mirror ended ok, else 1."""
    return 0 if all(r.outcome is PushOutcome.OK for r in results) else 1
