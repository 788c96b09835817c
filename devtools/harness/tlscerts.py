"""Certificates the tests make: a CA of their own (what a test trusts instead of the system's
store), certificates it issues for any names and dates, self-signed ones, and a chain padded to
any size. Dates are unix seconds, from the test's clock."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _utc(ts: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class Issued:
    """A certificate's chain (the leaf first) and key, as PEM files for a web server."""

    chain: Path
    key: Path
    cert: x509.Certificate

    @property
    def fingerprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex()


class TestCa:
    """A certificate authority on disk: `cafile` is what the code under test trusts."""

    __test__ = False  # not a pytest class

    def __init__(self, directory: Path, name: str = "pushsync test CA") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=3650)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=3 * 3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )
        self.cafile = directory / "ca.pem"
        self.cafile.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self._count = 0

    def issue(
        self,
        names: tuple[str, ...],
        not_before: float,
        not_after: float,
        *,
        self_signed: bool = False,
        padding: int = 0,
    ) -> Issued:
        """Issue (or, `self_signed`, sign with its own key) a server certificate for DNS
        `names`, valid from `not_before` to `not_after`; `padding` more bytes of certificates
        follow the leaf in the chain file (copies of the CA's, as a hostile server might)."""
        self._count += 1
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject if self_signed else self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_utc(not_before))
            .not_valid_after(_utc(not_after))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .sign(key if self_signed else self.key, hashes.SHA256())
        )
        pem = cert.public_bytes(serialization.Encoding.PEM)
        ca_pem = self.cert.public_bytes(serialization.Encoding.PEM)
        chain = pem + ca_pem * (padding // len(ca_pem) + (1 if padding else 0))
        issued = Issued(
            self.directory / f"cert{self._count}.pem",
            self.directory / f"key{self._count}.pem",
            cert,
        )
        issued.chain.write_bytes(chain)
        issued.key.write_bytes(_key_pem(key))
        return issued
