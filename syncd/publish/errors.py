"""Failures talking to a mirror: `PushError` and its subclasses. The ssh adapter translates
asyncssh and OS exceptions into these once, at the boundary (`syncd.publish.ssh`); the rest of
syncd (and the retry classification) only ever sees these. Each class carries the final
outcome it stands for and whether it is worth another attempt. They end as a mirror's outcome,
not as syncd's exit (that is `syncd.errors.SyncdError`)."""

from __future__ import annotations

from syncd.publish.outcome import PushOutcome


class PushError(Exception):
    """A failure reaching or talking to a mirror; `outcome` and `transient` say what it means."""

    outcome: PushOutcome = PushOutcome.FAILED
    transient: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuthFailed(PushError):
    """The mirror refused our key (not in its authorized_keys, or the wrong account)."""

    outcome = PushOutcome.AUTH_FAILED


class HostKeyMismatch(PushError):
    """The mirror presented a host key that is not pinned for it: never retried."""

    outcome = PushOutcome.HOST_KEY_MISMATCH


class Unreachable(PushError):
    """No TCP connection (refused, no route, name not resolved)."""

    outcome = PushOutcome.UNREACHABLE
    transient = True


class ConnectionDropped(PushError):
    """The connection was lost before or during the handshake (e.g. sshd MaxStartups)."""

    outcome = PushOutcome.UNREACHABLE
    transient = True


class HandshakeTimeout(PushError):
    """Connect or login did not finish in time."""

    outcome = PushOutcome.TIMEOUT
    transient = True


class CommandTimeout(PushError):
    """The forced command did not answer before its deadline (it keeps its own deadline)."""

    outcome = PushOutcome.TIMEOUT


class BadOutput(PushError):
    """The mirror answered, but not with one valid report (garbage, too big, cut off)."""

    outcome = PushOutcome.FAILED


class ProtocolError(PushError):
    """An ssh protocol or channel failure after login."""

    outcome = PushOutcome.FAILED
    transient = True
