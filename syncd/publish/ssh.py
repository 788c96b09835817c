"""The one module that touches asyncssh: pinned, key-only ssh sessions to mirrors, driven from
trio; asyncssh's own asyncio code runs where `syncd.publish.aioloop` puts it (by default a
plain asyncio loop in a worker thread), crossed once per step (connect, run, close).

Options are built once: the pusher key is loaded once, each mirror's pinned host keys are parsed
once, and nothing is read from ``~/.ssh`` (``config=None``, no agent, no known_hosts file, never
trust-on-first-use). asyncssh and OS exceptions are translated here, once, into
``syncd.errors``; the rest of syncd never sees an asyncssh type.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import trio

from syncd.errors import SyncdError
from syncd.files import read_secret_file
from syncd.inventory.model import Mirror, host_problem
from syncd.publish.aioloop import AioLoop
from syncd.publish.config import Policy
from syncd.publish.errors import (
    AuthFailed,
    BadOutput,
    ConnectionDropped,
    HandshakeTimeout,
    HostKeyMismatch,
    ProtocolError,
    PushError,
    Unreachable,
)

KEX_ALGS = ["curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256"]
ENCRYPTION_ALGS = [
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
]
MAC_ALGS = ["hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com"]
CHUNK = 64 * 1024
STDERR_TAIL = 4096


class SshSetupError(SyncdError, ValueError):
    """The pusher key or a pinned host key cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Reply:
    """A finished command: its exit status (None when killed by a signal), its stdout (at most
    the policy's limit) and the tail of its stderr."""

    exit_status: int | None
    stdout: bytes
    stderr_tail: bytes


@dataclass
class Session:
    mirror: Mirror
    conn: asyncssh.SSHClientConnection
    closed: bool = False  # closed on the loop once its command ended (see PinnedSsh.run)


def raise_nofile_limit(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards `wanted` (up to the hard limit); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def _reason(err: BaseException) -> str:
    return str(getattr(err, "reason", "") or getattr(err, "strerror", "") or err)


# Order matters: the first matching class wins (subclasses before their bases).
_HANDSHAKE: list[tuple[type[BaseException] | tuple[type[BaseException], ...], Any]] = [
    (asyncssh.HostKeyNotVerifiable, lambda e: HostKeyMismatch(f"host key not verifiable: {e}")),
    (asyncssh.PermissionDenied, lambda e: AuthFailed(f"permission denied for our key: {e}")),
    (asyncssh.ConnectionLost, lambda e: ConnectionDropped(f"lost during the handshake: {e}")),
    (
        (asyncssh.KeyExchangeFailed, asyncssh.ProtocolNotSupported),
        lambda e: PushError(f"no common algorithms (needs curve25519 and AES-GCM): {e}"),
    ),
    (asyncssh.DisconnectError, lambda e: ConnectionDropped(f"disconnected in handshake: {e}")),
    (TimeoutError, lambda e: HandshakeTimeout("connect or login timed out")),
    (ConnectionRefusedError, lambda e: Unreachable("connection refused")),
    (socket.gaierror, lambda e: Unreachable(f"cannot resolve the host: {e}")),
    (UnicodeError, lambda e: Unreachable(f"cannot resolve the host: {e}")),
    (OSError, lambda e: Unreachable(f"cannot connect: {e}")),
]


def _translate_handshake(err: BaseException) -> PushError:
    """Map an exception raised while connecting and logging in to our hierarchy."""
    for kinds, make in _HANDSHAKE:
        if isinstance(err, kinds):
            translated: PushError = make(_reason(err))
            return translated
    return ProtocolError(f"{type(err).__name__}: {err}")


def _translate_session(err: BaseException) -> PushError:
    """Map an exception raised after login (channel, command) to our hierarchy."""
    if isinstance(err, asyncssh.ChannelOpenError):
        return ProtocolError(f"the mirror refused a session: {err.reason}")
    if isinstance(err, asyncssh.DisconnectError):
        return ProtocolError(f"disconnected during the command: {err.reason}")
    if isinstance(err, OSError):
        return ProtocolError(f"connection failed during the command: {err.strerror or err}")
    return ProtocolError(f"{type(err).__name__}: {err}")


KEY_MISSING = (
    "give the pusher's private key with --key, or key= (or a [[sources]] key=) in syncd.toml"
)


def load_pusher_key(key_path: Path, *, missing: str = KEY_MISSING) -> asyncssh.SSHKey:
    """The pusher's private key at `key_path`, refused as ssh refuses a private key (see
    `syncd.files.read_secret_file`; `missing`: the fix when there is no such file) or when it
    is not an unencrypted OpenSSH private key (SshSetupError)."""
    text = read_secret_file(key_path, "the pusher key", missing=missing)  # its mode, as ssh
    try:
        return asyncssh.import_private_key(text)
    except (OSError, asyncssh.KeyImportError) as err:
        raise SshSetupError(
            f"cannot load the pusher key {key_path}: {err} "
            "(an unencrypted OpenSSH private key is expected)"
        ) from None


class PinnedSsh:
    """Connections to mirrors with the one pusher key and each mirror's pinned host keys."""

    def __init__(self, key_path: Path, policy: Policy) -> None:
        self.aio: AioLoop | None = None  # set once the publish has opened its asyncio loop
        self._key = load_pusher_key(key_path)
        self._policy = policy
        self._base = asyncssh.SSHClientConnectionOptions(
            config=None,
            agent_path=None,
            agent_forwarding=False,
            client_keys=[self._key],
            ignore_encrypted=True,
            preferred_auth=["publickey"],
            public_key_auth=True,
            password_auth=False,
            kbdint_auth=False,
            gss_auth=False,
            host_based_auth=False,
            x509_trusted_certs=None,
            kex_algs=KEX_ALGS,
            encryption_algs=ENCRYPTION_ALGS,
            mac_algs=MAC_ALGS,
            compression_algs=["none"],
            connect_timeout=policy.connect_timeout,
            login_timeout=policy.login_timeout,
            keepalive_interval=policy.keepalive_interval,
            keepalive_count_max=policy.keepalive_count_max,
        )
        # each mirror's pinned host keys, parsed once; given to asyncssh.connect with `_base`
        # (which builds the connection's options from them either way, in its executor)
        self._known: dict[str, tuple[list[asyncssh.SSHKey], list[Any], list[Any]]] = {}

    def _loop(self) -> AioLoop:
        if self.aio is None:
            raise RuntimeError("PinnedSsh used before its asyncio loop was opened")
        return self.aio

    def prepare(self, mirrors: Sequence[Mirror]) -> None:
        """Parse each mirror's pinned host keys once; raise SshSetupError naming a bad one."""
        for mirror in mirrors:
            try:
                keys = [asyncssh.import_public_key(line) for line in mirror.host_keys]
            except asyncssh.KeyImportError as err:
                raise SshSetupError(f"mirror {mirror.name!r}: host_keys: {err}") from None
            if not keys:  # an empty list would make asyncssh fall back to ~/.ssh/known_hosts
                raise SshSetupError(f"mirror {mirror.name!r}: host_keys: none pinned")
            self._known[mirror.name] = (keys, [], [])

    async def open(self, mirror: Mirror) -> Session:
        """Connect and log in to `mirror`; raise a PushError when that fails."""
        problem = host_problem(mirror.host)
        if problem:
            raise Unreachable(f"cannot resolve the host {mirror.host[:60]!r}: {problem}")
        known = self._known.get(mirror.name)
        if known is None:
            self.prepare([mirror])
            known = self._known[mirror.name]
        try:
            conn = await self._loop().call(
                _connect, mirror.host, mirror.port, self._base, known, mirror.user, orphan=_close
            )
        except (asyncssh.Error, OSError, UnicodeError) as err:
            raise _translate_handshake(err) from None
        return Session(mirror, conn)

    async def run(self, session: Session, request: str) -> Reply:
        """Run `request` (it becomes SSH_ORIGINAL_COMMAND); return its bounded output. The
        connection is closed as the command ends, on the loop (one crossing less per mirror);
        on failure it is left to `close`."""
        try:
            result: Reply = await self._loop().call(
                _run_then_close, session.conn, request, self._policy.output_limit
            )
            session.closed = True
        except PushError:
            raise
        except (asyncssh.Error, OSError) as err:
            raise _translate_session(err) from None
        return result

    async def close(self, session: Session) -> None:
        """Close the connection, waiting a little for a clean goodbye; never raises."""
        if session.closed:
            return
        with trio.move_on_after(2) as scope:
            scope.shield = True
            with contextlib.suppress(asyncssh.Error, OSError):
                await self._loop().call(_close, session.conn)


async def _connect(
    host: str,
    port: int,
    options: asyncssh.SSHClientConnectionOptions,
    known_hosts: tuple[list[asyncssh.SSHKey], list[Any], list[Any]],
    username: str,
) -> asyncssh.SSHClientConnection:
    return await asyncssh.connect(
        host, port, options=options, config=None, known_hosts=known_hosts, username=username
    )


async def _close(conn: asyncssh.SSHClientConnection) -> None:
    conn.close()
    await conn.wait_closed()


async def _run_then_close(conn: asyncssh.SSHClientConnection, request: str, limit: int) -> Reply:
    """(asyncio) `_run_bounded`, then close the connection (its goodbye goes on on the loop)."""
    reply = await _run_bounded(conn, request, limit)
    conn.close()
    return reply


async def _read_bounded(stream: Any, limit: int) -> tuple[bytes, bool]:
    """Read `stream` to EOF keeping at most `limit` bytes; return them and whether it overflowed."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await stream.read(CHUNK)
        if not chunk:
            return b"".join(chunks), False
        size += len(chunk)
        if size > limit:
            return b"".join(chunks), True
        chunks.append(chunk)


async def _read_tail(stream: Any) -> bytes:
    tail = b""
    while True:
        chunk = await stream.read(CHUNK)
        if not chunk:
            return tail
        tail = (tail + chunk)[-STDERR_TAIL:]


async def _run_bounded(conn: asyncssh.SSHClientConnection, request: str, limit: int) -> Reply:
    """(asyncio) Run `request`, reading stdout up to `limit` bytes and the tail of stderr."""
    proc = await conn.create_process(request, encoding=None)
    try:
        proc.stdin.write_eof()
        err_task = asyncio.ensure_future(_read_tail(proc.stderr))
        try:
            out, overflow = await _read_bounded(proc.stdout, limit)
        except BaseException:
            err_task.cancel()
            raise
        if overflow:
            err_task.cancel()
            raise BadOutput(f"more than {limit} bytes on stdout: not a report")
        err = await err_task
        await proc.wait_closed()
        return Reply(proc.exit_status, out, err)
    finally:
        proc.close()


def fetch_host_key(host: str, port: int, timeout: float = 15.0) -> str:
    """Return the ed25519 (else first) host key `host:port` offers, as ``keytype base64``.

    Used only to show an admin's new mirror's key before it is pinned; never to trust it."""

    async def get() -> str:
        key = await asyncio.wait_for(
            asyncssh.get_server_host_key(
                host,
                port,
                config=None,
                server_host_key_algs=[
                    "ssh-ed25519",
                    "ecdsa-sha2-nistp256",
                    "rsa-sha2-512",
                    "rsa-sha2-256",
                ],
            ),
            timeout,
        )
        if key is None:
            raise Unreachable("no host key offered")
        return key.export_public_key("openssh").decode().split("#")[0].strip()

    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
        try:
            return runner.run(get())
        except (asyncssh.Error, OSError, TimeoutError) as err:
            raise _translate_handshake(err) from None
