"""A mirror's https certificate, fetched the way freshclam's TLS meets it (trio, stdlib ssl).

freshclam 0.102 and later fetch over libcurl with OpenSSL and the system's CA store, and
verify the chain, the name and the dates (libcurl's default; freshclam cannot turn that off).
So does the first handshake here: ``ssl.create_default_context`` (the system store, or the
`cafile` a lab or a test names instead), the host name sent as SNI and checked by OpenSSL.
When OpenSSL refuses the certificate, a second handshake that verifies nothing reads it, so
that the page and the mail can say what it is (its dates, its names); no request is sent in
either, and nothing but the handshake is read.

Bounded: each handshake by `timeout_s` (connect included: a server that accepts and stalls,
or drips a byte at a time, ends there) and by `max_bytes` received (a chain of megabytes ends
at the cap, OpenSSL's own limit of 100 KiB per handshake message aside). What goes wrong is
one `TlsAnswer.failure` line, never an exception.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import trio

from syncd.httpcheck.certificate import (
    MAX_DER_BYTES,
    CertFacts,
    CertificateError,
    read_certificate,
)
from syncd.inventory.model import host_problem
from syncd.text import clean

MAX_HANDSHAKE_BYTES = MAX_DER_BYTES  # a real chain is 3 to 10 KB


@dataclass(frozen=True)
class TlsAnswer:
    """What a handshake with the mirror's https showed: its certificate (None when none was
    read), OpenSSL's refusal (code and message, None when it verified), or why there was no
    TLS answer at all."""

    cert: CertFacts | None = None
    verify_code: int | None = None
    verify_error: str | None = None
    failure: str | None = None


class _TooMuch(Exception):
    pass


class _Capped(trio.abc.Stream):
    """A stream that refuses to receive more than `cap` bytes in all."""

    def __init__(self, inner: trio.abc.Stream, cap: int) -> None:
        self.inner, self.left = inner, cap

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.inner.receive_some(max_bytes)
        self.left -= len(data)
        if self.left < 0:
            raise _TooMuch
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _leaf(
    host: str, port: int, context: ssl.SSLContext, timeout_s: float, max_bytes: int
) -> bytes:
    """Connect, shake hands, return the leaf certificate's DER; raise what went wrong."""
    with trio.fail_after(timeout_s):
        stream = await trio.open_tcp_stream(host, port)
        tls = trio.SSLStream(_Capped(stream, max_bytes), context, server_hostname=host)
        try:
            await tls.do_handshake()
            der: bytes | None = tls.getpeercert(binary_form=True)
        finally:
            await trio.aclose_forcefully(tls)
    if not der:
        raise CertificateError("the server sent no certificate")
    return der


@dataclass(frozen=True)
class Contexts:
    """The two TLS contexts of a check: one that verifies as freshclam does, one that reads
    what OpenSSL refused. Made once per pass (loading a CA store costs milliseconds), so a
    store updated meanwhile is read by the next pass."""

    verify: ssl.SSLContext
    read: ssl.SSLContext


def contexts(cafile: str | None = None) -> Contexts:
    """Given a CA file (None: the system's store), return the contexts of a check."""
    read = ssl.create_default_context(cafile=cafile)
    read.check_hostname = False
    read.verify_mode = ssl.CERT_NONE
    return Contexts(ssl.create_default_context(cafile=cafile), read)


_NOT_TLS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG")


def _failure(err: BaseException, where: str, timeout_s: float, max_bytes: int) -> str:
    """One line for a handshake that gave no certificate."""
    cause = err.__cause__ if isinstance(err, trio.BrokenResourceError) else err
    if isinstance(err, trio.TooSlowError):
        why = f": no TLS handshake within {timeout_s:g} s"
    elif isinstance(err, _TooMuch):
        why = f" sent more than {max_bytes} bytes before its handshake ended"
    elif isinstance(cause, ssl.SSLError):
        reason = clean(str(cause.reason or cause.strerror or cause), 200)
        if reason in _NOT_TLS:
            why = f" does not speak TLS (plain http on the https port?): {reason}"
        else:
            why = f": the TLS handshake failed: {reason}"
    elif isinstance(cause, CertificateError):
        why = f": {cause}"
    elif isinstance(cause, OSError | trio.BrokenResourceError | trio.ClosedResourceError):
        detail = cause.strerror if isinstance(cause, OSError) and cause.strerror else cause
        why = f": cannot connect: {clean(str(detail) or type(cause).__name__, 200)}"
    else:
        why = f": {type(err).__name__}: {clean(str(err), 200)}"
    return where + why


_FAILURES = (trio.BrokenResourceError, trio.TooSlowError, _TooMuch, OSError, CertificateError)


async def certificate(
    host: str,
    port: int = 443,
    *,
    cafile: str | None = None,
    timeout_s: float = 10.0,
    max_bytes: int = MAX_HANDSHAKE_BYTES,
    tls: Contexts | None = None,
) -> TlsAnswer:
    """Return what a TLS handshake with `host`:`port` (SNI and name checked: `host`) shows,
    verified against `cafile` (None: the system's CA store, as freshclam), or with `tls`
    when given (see `contexts`). Never raises for what the server does: a failure is in the
    answer."""
    where = f"{host}:{port}"[:120]
    problem = host_problem(host)
    if problem:
        return TlsAnswer(failure=f"cannot connect to {host[:60]!r}: {problem}")
    tls = tls or contexts(cafile)
    try:
        der = await _leaf(host, port, tls.verify, timeout_s, max_bytes)
        return TlsAnswer(cert=read_certificate(der))
    except _FAILURES as err:
        refused = err.__cause__ if isinstance(err, trio.BrokenResourceError) else None
        if not isinstance(refused, ssl.SSLCertVerificationError):
            return TlsAnswer(failure=_failure(err, where, timeout_s, max_bytes))
    code = refused.verify_code
    message = clean(str(refused.verify_message or refused.reason or refused), 300)
    try:  # OpenSSL refused it: read it unverified, to say what it is
        der = await _leaf(host, port, tls.read, timeout_s, max_bytes)
        return TlsAnswer(read_certificate(der), code, message)
    except _FAILURES as err:
        return TlsAnswer(None, code, message, _failure(err, where, timeout_s, max_bytes))
