"""A mirror's https certificate read as freshclam's TLS meets it: real nginx serving
certificates the test makes (its own CA standing in for the system's store), and the hostile
servers nginx cannot be (one that stalls the handshake, one that drips it)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.harness.nginx import Nginx
from devtools.harness.tlscerts import TestCa
from syncd.httpcheck.certificate import MAX_NAMES, CertificateError, covers, read_certificate
from syncd.httpcheck.tls import MAX_HANDSHAKE_BYTES, TlsAnswer, certificate

DAY = 86_400.0


@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    return TestCa(tmp_path / "ca")


def _ask(port: int, ca: TestCa, timeout_s: float = 5.0, **kw: object) -> TlsAnswer:
    return trio.run(
        lambda: certificate("localhost", port, cafile=str(ca.cafile), timeout_s=timeout_s, **kw)  # type: ignore[arg-type]
    )


def _served(
    nginx_factory: Callable[..., Nginx], tmp_path: Path, chain: Path, key: Path, **kw: object
) -> Nginx:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    return nginx_factory(root, tls=(chain, key), **kw)


def test_a_certificate_the_ca_issued_for_the_name_verifies(
    tmp_path: Path, nginx_factory: Callable[..., Nginx], ca: TestCa
) -> None:
    now = time.time()
    issued = ca.issue(("localhost", "www.localhost"), now - DAY, now + 20 * DAY)
    nginx = _served(nginx_factory, tmp_path, issued.chain, issued.key)
    answer = _ask(nginx.tls_port, ca)
    assert answer.failure is None and answer.verify_code is None
    assert answer.cert is not None
    assert answer.cert.fingerprint == issued.fingerprint
    assert answer.cert.names == ("localhost", "www.localhost")
    assert answer.cert.not_after == int(now + 20 * DAY)
    assert answer.cert.issuer == "CN=pushsync test CA"


@pytest.mark.parametrize(
    ("kind", "code", "message"),
    [
        ("wrong name", 62, "Hostname mismatch"),
        ("self-signed", 18, "self-signed certificate"),
        ("expired", 10, "certificate has expired"),
        ("another CA", 20, "unable to get local issuer certificate"),
    ],
)
def test_a_certificate_openssl_refuses_is_read_all_the_same(
    tmp_path: Path,
    nginx_factory: Callable[..., Nginx],
    ca: TestCa,
    kind: str,
    code: int,
    message: str,
) -> None:
    """OpenSSL's refusal (what freshclam meets) and the certificate itself (read by a second
    handshake that verifies nothing), so the page and the mail can say what it is."""
    now = time.time()
    issued = {
        "wrong name": lambda: ca.issue(("mirror.example.org",), now - DAY, now + 20 * DAY),
        "self-signed": lambda: ca.issue(
            ("localhost",), now - DAY, now + 20 * DAY, self_signed=True
        ),
        "expired": lambda: ca.issue(("localhost",), now - 90 * DAY, now - DAY),
        "another CA": lambda: TestCa(tmp_path / "other", "another CA").issue(
            ("localhost",), now - DAY, now + 20 * DAY
        ),
    }[kind]()
    nginx = _served(nginx_factory, tmp_path, issued.chain, issued.key)
    answer = _ask(nginx.tls_port, ca)
    assert answer.failure is None
    assert answer.verify_code == code
    assert answer.verify_error is not None and message in answer.verify_error
    assert answer.cert is not None and answer.cert.fingerprint == issued.fingerprint


def test_plain_http_on_the_https_port_is_no_tls(
    tmp_path: Path, nginx_factory: Callable[..., Nginx], ca: TestCa
) -> None:
    now = time.time()
    issued = ca.issue(("localhost",), now - DAY, now + 20 * DAY)
    nginx = _served(nginx_factory, tmp_path, issued.chain, issued.key, tls_plain=True)
    answer = _ask(nginx.tls_port, ca)
    assert answer.cert is None and answer.verify_code is None
    assert answer.failure is not None and "does not speak TLS" in answer.failure


@pytest.mark.parametrize("padding", [120_000, 1_000_000])
def test_a_huge_chain_is_refused_at_the_cap(
    tmp_path: Path, nginx_factory: Callable[..., Nginx], ca: TestCa, padding: int
) -> None:
    """120 KB of PEM (88 KB on the wire): past our cap (64 KiB), under OpenSSL's own 100 KiB;
    1 MB: past both. Neither is read whole: the answer is a failure naming the cap (or
    OpenSSL's limit)."""
    now = time.time()
    issued = ca.issue(("localhost",), now - DAY, now + 20 * DAY, padding=padding)
    assert issued.chain.stat().st_size > padding
    nginx = _served(nginx_factory, tmp_path, issued.chain, issued.key)
    answer = _ask(nginx.tls_port, ca)
    assert answer.cert is None and answer.failure is not None
    assert (
        f"sent more than {MAX_HANDSHAKE_BYTES} bytes" in answer.failure
        or "EXCESSIVE_MESSAGE_SIZE" in answer.failure
    ), answer.failure
    if padding < 130_000:  # under OpenSSL's limit on the wire: our cap ended it
        assert f"sent more than {MAX_HANDSHAKE_BYTES} bytes" in answer.failure


class _Stalling:
    """Accepts TCP connections and then, per `mode`: ``stall`` never answers, ``drip`` sends
    a TLS record header and then one byte a second, forever."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        held = []
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            self.accepted += 1
            held.append(conn)
            if self.mode == "drip":
                threading.Thread(target=self._drip, args=(conn,), daemon=True).start()
        for conn in held:
            conn.close()

    def _drip(self, conn: socket.socket) -> None:
        try:
            conn.sendall(b"\x16\x03\x03\x40\x00")  # a handshake record of 16 KiB announced
            while not self.stop.wait(1.0):
                conn.sendall(b"\x02")
        except OSError:
            pass

    def __enter__(self) -> _Stalling:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join(5)


@pytest.mark.parametrize("mode", ["stall", "drip"])
def test_a_server_that_stalls_the_handshake_fails_at_the_timeout(ca: TestCa, mode: str) -> None:
    with _Stalling(mode) as server:
        answer = trio.run(
            lambda: certificate("127.0.0.1", server.port, cafile=str(ca.cafile), timeout_s=1.5)
        )
    assert answer.cert is None
    assert answer.failure == f"127.0.0.1:{server.port}: no TLS handshake within 1.5 s"
    assert server.accepted == 1


def test_a_closed_port_and_a_bad_host_are_failures_not_errors(ca: TestCa) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = trio.run(lambda: certificate("127.0.0.1", port, cafile=str(ca.cafile)))
    assert closed.failure is not None and "cannot connect" in closed.failure
    bad = trio.run(lambda: certificate("mirror..example.org", 443))
    assert bad.failure is not None and "not a valid host name" in bad.failure


# the certificate's bytes are a boundary: whatever a server sends, a value or one error


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_any_bytes_are_a_certificate_or_one_error(data: bytes) -> None:
    try:
        facts = read_certificate(data)
    except CertificateError as err:
        assert "\n" not in str(err)
    else:
        assert len(facts.fingerprint) == 64


@pytest.fixture(scope="module")
def real_der(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    now = time.time()
    return (
        TestCa(tmp_path_factory.mktemp("ca"))
        .issue(("localhost",), now - DAY, now + DAY)
        .cert.public_bytes(Encoding.DER)
    )


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_certificate_with_any_byte_changed_is_read_or_refused(
    real_der: bytes, data: st.DataObject
) -> None:
    at = data.draw(st.integers(0, len(real_der) - 1))
    value = data.draw(st.integers(0, 255))
    spoilt = real_der[:at] + bytes([value]) + real_der[at + 1 :]
    try:
        facts = read_certificate(spoilt)
    except CertificateError:
        return
    assert all(len(n) <= 253 and "\n" not in n for n in facts.names)


# a host name's label holds a letter: four labels of digits are an IPv4 address, which no
# wildcard covers (test_an_ip_address_is_covered_only_by_itself)
_LABEL = st.text("abcdefghij0123456789", min_size=1, max_size=8).filter(lambda s: not s.isdigit())


@given(st.lists(_LABEL, min_size=2, max_size=5), _LABEL)
def test_a_wildcard_stands_for_one_whole_label(labels: list[str], other: str) -> None:
    host = ".".join(labels)
    rest = ".".join(labels[1:])
    assert covers((host.upper(),), host)
    assert covers((f"*.{rest}",), host) == (rest.count(".") >= 1)
    assert not covers((f"*.{host}",), host)  # no label for the star
    assert not covers((f"{labels[0][:1]}*.{rest}",), host)  # no partial wildcard
    assert covers((f"*.{rest}",), f"{other}.{rest}") == (rest.count(".") >= 1)
    assert not covers((f"*.{rest}",), f"a.{other}.{rest}")  # one label only


def test_an_ip_address_is_covered_only_by_itself() -> None:
    assert covers(("127.0.0.1",), "127.0.0.1")
    assert not covers(("localhost",), "127.0.0.1")
    assert not covers(("*.0.0.1",), "127.0.0.1")


def test_a_certificate_for_hundreds_of_names_is_shown_cut(
    tmp_path: Path, nginx_factory: Callable[..., Nginx], ca: TestCa
) -> None:
    now = time.time()
    names = ("localhost", *(f"n{i}.{'x' * 60}.example" for i in range(300)))
    issued = ca.issue(names, now - DAY, now + 20 * DAY)
    nginx = _served(nginx_factory, tmp_path, issued.chain, issued.key)
    answer = _ask(nginx.tls_port, ca)
    assert answer.failure is None and answer.cert is not None
    assert len(answer.cert.names) == MAX_NAMES and answer.cert.names[-1] == "…"
    assert answer.cert.names[0] == "localhost"
