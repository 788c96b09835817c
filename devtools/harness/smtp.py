"""A real SMTP server (aiosmtpd) on loopback that keeps every message it receives."""

from __future__ import annotations

import email
import email.policy
import ssl
import threading
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from devtools.harness.ports import free_port


class _Collect:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.sink.lock:
            if self.sink.refuse > 0:  # a server that refuses, then accepts
                self.sink.refuse -= 1
                self.sink.refused += 1
                return "554 5.3.0 refused (the harness refuses this message)"
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        with self.sink.lock:
            self.sink.messages.append(msg)
            self.sink.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


class SmtpSink:
    """Collects mail on `host` (a loopback address, or a network namespace's veth address).
    With `tls_context` it requires STARTTLS; with `credentials` (user, password) it requires
    AUTH LOGIN/PLAIN with exactly those. It refuses the next `refuse` messages (554), then
    accepts again."""

    def __init__(
        self,
        port: int | None = None,
        *,
        tls_context: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.port = port or free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.auth_attempts: list[str] = []
        self.refuse = 0  # messages still to refuse
        self.refused = 0  # messages refused so far
        self.lock = threading.Lock()
        kw: dict[str, Any] = {}
        if tls_context is not None:
            kw.update(tls_context=tls_context, require_starttls=True)
        if credentials is not None:
            kw.update(
                auth_required=True,
                auth_require_tls=tls_context is not None,
                authenticator=self._authenticator(credentials),
            )
        self._controller = Controller(_Collect(self), hostname=self.host, port=self.port, **kw)

    def _authenticator(self, credentials: tuple[str, str]) -> Any:
        def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
            user = data.login.decode() if isinstance(data, LoginPassword) else "?"
            self.auth_attempts.append(user)
            ok = (
                isinstance(data, LoginPassword)
                and (data.login.decode(), data.password.decode()) == credentials
            )
            return AuthResult(success=ok, handled=False)

        return check

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def self_signed_context(workdir: Any, host: str = "127.0.0.1") -> tuple[ssl.SSLContext, str]:
    """Return a server TLS context with a fresh self-signed cert, and the cert's PEM path."""
    import datetime
    import ipaddress
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = Path(workdir)
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx, str(cert_path)
