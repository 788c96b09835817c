"""A server's certificate as syncd reads it: its dates, its names and its fingerprint, from
the DER bytes a TLS handshake gave (`syncd.httpcheck.tls`), and whether it covers a host name.
Pure: bytes in, plain values out (cryptography parses; nothing is verified here: the chain and
the name are OpenSSL's to verify, as freshclam's libcurl has OpenSSL verify them).

Every value that came from the certificate (names, subject, issuer) is cleaned
(`syncd.text.clean`) and bounded: at most `MAX_NAMES` names of at most 253 characters each.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from syncd.text import clean

MAX_NAMES = 50  # of the subjectAltName; a certificate for more is shown cut ("…" last)
MAX_DER_BYTES = 64 * 1024  # a leaf certificate is a few KB; the handshake's cap is the same


class CertificateError(ValueError):
    """The bytes are not a certificate syncd can read; the message says why, one line."""


@dataclass(frozen=True)
class CertFacts:
    """A certificate's facts: what the monitor judges and the page shows."""

    fingerprint: str  # SHA-256 of the DER, lower-case hex: one certificate, renewed or not
    not_before: float  # unix seconds
    not_after: float
    names: tuple[str, ...]  # subjectAltName DNS names and IP addresses; else the subject's CN
    subject: str
    issuer: str


def _name_text(name: x509.Name) -> str:
    try:
        return clean(name.rfc4514_string(), 300)
    except ValueError:
        return "(unreadable)"


def _names(cert: x509.Certificate) -> tuple[str, ...]:
    """The names a TLS client matches a host against: the subjectAltName's DNS names and IP
    addresses; the subject's common names only when the certificate has no DNS name (as
    OpenSSL and libcurl fall back)."""
    found: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        found += [str(n) for n in san.get_values_for_type(x509.DNSName)]
        found += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
        has_dns = bool(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        has_dns = False
    if not has_dns:
        found += [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    shown = [clean(n, 253) for n in found[: MAX_NAMES + 1]]
    if len(shown) > MAX_NAMES:
        shown = [*shown[: MAX_NAMES - 1], "…"]
    return tuple(shown)


def read_certificate(der: bytes) -> CertFacts:
    """Given a certificate's DER bytes, return its facts; raise CertificateError when they are
    not one (or more than `MAX_DER_BYTES`)."""
    if len(der) > MAX_DER_BYTES:
        raise CertificateError(f"a certificate of {len(der)} bytes (at most {MAX_DER_BYTES})")
    try:
        cert = x509.load_der_x509_certificate(der)
        return CertFacts(
            fingerprint=hashlib.sha256(der).hexdigest(),
            not_before=cert.not_valid_before_utc.timestamp(),
            not_after=cert.not_valid_after_utc.timestamp(),
            names=_names(cert),
            subject=_name_text(cert.subject),
            issuer=_name_text(cert.issuer),
        )
    except Exception as err:  # whatever cryptography raises for bytes from outside
        # (ValueError mostly, but InvalidVersion, found by the property test, is not one)
        why = clean(f"{type(err).__name__}: {err}", 200)
        raise CertificateError(f"not a readable certificate: {why}") from None


def covers(names: tuple[str, ...], host: str) -> bool:
    """Whether a certificate with `names` is valid for `host` as OpenSSL's host check sees it:
    a name equal to the host (case aside), or a wildcard ``*.rest`` standing for exactly one
    whole leftmost label (no partial wildcards, none in a public suffix of one label); an IP
    address only by an equal address."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        return any(_same_ip(n, ip) for n in names)
    want = host.rstrip(".").lower()
    for raw in names:
        name = raw.rstrip(".").lower()
        if name == want and "*" not in name:
            return True
        if name.startswith("*.") and "*" not in name[2:] and name.count(".") >= 2:
            label, _, rest = want.partition(".")
            if label and rest == name[2:]:
                return True
    return False


def _same_ip(name: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    try:
        return ipaddress.ip_address(name) == ip
    except ValueError:
        return False
