"""The vhost snippets of docs/vhosts/: loaded by the real server where it is installed here.

Each snippet is served over http and, with a certificate this module makes for the mirror's own
name, over https, and gets the same checks. scripts/setup installs nginx, apache2, lighttpd and
lighttpd-mod-openssl, so all three run in CI; on a machine without apache2 or lighttpd those get
only the static checks below (names, wildcard regex, dot names denied, the https virtual host).
"""

from __future__ import annotations

import datetime
import email.utils
import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devtools.harness.account import make_traversable
from devtools.harness.binaries import require
from devtools.harness.cvd import HEADER_SIZE, build_cvd
from devtools.harness.ports import free_port, stop_process, wait_listening

ROOT = Path(__file__).resolve().parent.parent.parent
VHOSTS = ROOT / "docs" / "vhosts"
MIRROR = "clamav.mirror.test"
GOOD_HOSTS = ("database.clamav.net", "db.test.clamav.net", "DB.Pl.ClamAV.net", MIRROR)
WRONG_HOSTS = ("db.clamav.net", "evil.example", "database.clamav.net.evil.example")
DEFAULT_BODY = b"default vhost\n"
DAILY = build_cvd("daily", 28034)
ACME_TOKEN = "k2hB0Lg1pQ_x-7"


@dataclass(frozen=True)
class Tls:
    """A self-signed certificate for the mirror's own name only, as Let's Encrypt would issue
    it: nobody but clamav.net's owner can have one for db.XY.clamav.net or database.clamav.net."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Served:
    http: tuple[str, int]
    https: tuple[str, int]
    access_log: Path


def make_tls(directory: Path, name: str = MIRROR) -> Tls:
    """Write a fresh self-signed certificate (and its key) for DNS name `name`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    tls = Tls(directory / "cert.pem", directory / "key.pem")
    tls.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tls


def fill_nginx_snippet(
    *, port: int, tls_port: int, docroot: Path, acme: Path, tls: Tls, access_log: Path
) -> str:
    """Return docs/vhosts/nginx.conf with its placeholders replaced (each must occur once)."""
    snippet = (VHOSTS / "nginx.conf").read_text()
    fill = {
        "listen 80;": f"listen 127.0.0.1:{port};",
        "listen [::]:80;": "",
        "listen 443 ssl;": f"listen 127.0.0.1:{tls_port} ssl;",
        "listen [::]:443 ssl;": "",
        "ssl_certificate /etc/letsencrypt/live/clamav.example.org/fullchain.pem;": (
            f"ssl_certificate {tls.cert};"
        ),
        "ssl_certificate_key /etc/letsencrypt/live/clamav.example.org/privkey.pem;": (
            f"ssl_certificate_key {tls.key};"
        ),
        "root /home/clamavdb/public_html;": f"root {docroot};",
        "root /var/www/acme;": f"root {acme};",
        "clamav.example.org;": MIRROR + ";",
        "/var/log/nginx/clamav-access.log": f"{access_log} freshclam",
    }
    for placeholder, value in fill.items():
        assert snippet.count(placeholder) == 1, placeholder
        snippet = snippet.replace(placeholder, value)
    return snippet


@contextmanager
def nginx_with_snippet(
    workdir: Path,
    docroot: Path,
    acme: Path,
    tls: Tls,
    *,
    extra: Callable[[Served], str] | None = None,
) -> Iterator[Served]:
    """Start nginx with docs/vhosts/nginx.conf (placeholders filled in) and a default server on
    both ports, so that a name the snippet does not answer gets a different body; `extra`
    returns more server blocks, given the ports."""
    port, tls_port = free_port(), free_port()
    access_log = workdir / "clamav-access.log"
    workdir.mkdir(parents=True)
    served = Served(("127.0.0.1", port), ("127.0.0.1", tls_port), access_log)
    snippet = fill_nginx_snippet(
        port=port, tls_port=tls_port, docroot=docroot, acme=acme, tls=tls, access_log=access_log
    )
    default = workdir / "default"
    default.mkdir()
    (default / "local_test").write_bytes(DEFAULT_BODY)
    user = "user root;" if os.geteuid() == 0 else ""
    conf = workdir / "nginx.conf"
    log = workdir / "error.log"
    tmp = workdir / "tmp"
    tmp.mkdir()
    conf.write_text(f"""
{user}
daemon off;
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log {log} info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    # what freshclam asked, with which Host, over which scheme, and what it got
    log_format freshclam '$scheme $host "$request" $status $body_bytes_sent "$http_user_agent"';
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port} default_server;
        listen 127.0.0.1:{tls_port} ssl default_server;
        ssl_certificate {tls.cert};
        ssl_certificate_key {tls.key};
        server_name _;
        root {default};
    }}
{snippet}
{extra(served) if extra else ""}
}}
""")
    for tree in (docroot, acme):
        make_traversable(tree)
    argv = [require("nginx"), "-c", str(conf), "-p", str(workdir), "-e", str(log)]
    check = subprocess.run([*argv, "-t"], capture_output=True, timeout=30)
    assert check.returncode == 0, check.stderr.decode(errors="replace")
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_listening("127.0.0.1", port, proc, log)
        wait_listening("127.0.0.1", tls_port, proc, log)
        yield served
    finally:
        stop_process(proc)


def fill(text: str, values: dict[str, str]) -> str:
    """Replace each placeholder of a snippet (each must occur in it)."""
    for placeholder, value in values.items():
        assert placeholder in text, placeholder
        text = text.replace(placeholder, value)
    return text


APACHE_MODULES = ("mpm_event", "authz_core", "alias", "dir", "ssl", "socache_shmcb", "mime")


@contextmanager
def apache_with_snippet(workdir: Path, docroot: Path, acme: Path, tls: Tls) -> Iterator[Served]:
    """Start apache2 with docs/vhosts/apache.conf (both virtual hosts, placeholders filled in)
    behind a default virtual host on each port. Only where apache2 is installed."""
    port, tls_port = free_port(), free_port()
    workdir.mkdir(parents=True)
    access_log = workdir / "clamav-access.log"
    snippet = fill(
        (VHOSTS / "apache.conf").read_text(),
        {
            "<VirtualHost *:80>": f"<VirtualHost 127.0.0.1:{port}>",
            "<VirtualHost *:443>": f"<VirtualHost 127.0.0.1:{tls_port}>",
            "/etc/letsencrypt/live/clamav.example.org/fullchain.pem": str(tls.cert),
            "/etc/letsencrypt/live/clamav.example.org/privkey.pem": str(tls.key),
            "/home/clamavdb/public_html": str(docroot),
            "/var/www/acme": str(acme),
            "ServerAlias clamav.example.org": f"ServerAlias {MIRROR}",
        },
    )
    default = workdir / "default"
    default.mkdir()
    (default / "local_test").write_bytes(DEFAULT_BODY)
    modules = "\n".join(
        f"LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so" for m in APACHE_MODULES
    )
    log = workdir / "error.log"
    conf = workdir / "apache2.conf"
    conf.write_text(f"""
ServerRoot {workdir}
ServerName localhost
{modules}
Define APACHE_LOG_DIR {workdir}
PidFile {workdir}/apache2.pid
DefaultRuntimeDir {workdir}
Mutex file:{workdir} default
ErrorLog {log}
LogLevel warn
User www-data
Group www-data
TypesConfig /etc/mime.types
SSLSessionCache none
Listen 127.0.0.1:{port}
Listen 127.0.0.1:{tls_port} https
<Directory />
    Require all denied
    AllowOverride None
</Directory>
<VirtualHost 127.0.0.1:{port}>
    ServerName default.invalid
    DocumentRoot {default}
    <Directory {default}>
        Require all granted
    </Directory>
</VirtualHost>
<VirtualHost 127.0.0.1:{tls_port}>
    ServerName default.invalid
    DocumentRoot {default}
    SSLEngine on
    SSLCertificateFile {tls.cert}
    SSLCertificateKeyFile {tls.key}
    <Directory {default}>
        Require all granted
    </Directory>
</VirtualHost>
{snippet}
""")
    for tree in (docroot, acme, default):
        make_traversable(tree)
    argv = [require("apache2"), "-f", str(conf), "-DFOREGROUND"]
    env = {**os.environ, "APACHE_RUN_DIR": str(workdir)}
    check = subprocess.run([*argv, "-t"], capture_output=True, timeout=30, env=env)
    assert check.returncode == 0, check.stderr.decode(errors="replace")
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_listening("127.0.0.1", port, proc, log)
        wait_listening("127.0.0.1", tls_port, proc, log)
        yield Served(("127.0.0.1", port), ("127.0.0.1", tls_port), access_log)
    finally:
        stop_process(proc)


@contextmanager
def lighttpd_with_snippet(workdir: Path, docroot: Path, acme: Path, tls: Tls) -> Iterator[Served]:
    """Start lighttpd with docs/vhosts/lighttpd.conf (placeholders filled in); the global
    document root is the default host. Only where lighttpd is installed."""
    port, tls_port = free_port(), free_port()
    workdir.mkdir(parents=True)
    access_log = workdir / "clamav-access.log"
    text = (VHOSTS / "lighttpd.conf").read_text()
    v6 = text.index('$SERVER["socket"] == "[::]:443" {')
    text = text[:v6] + text[text.index("}", v6) + 1 :]  # loopback only here
    snippet = fill(
        text,
        {
            '$SERVER["socket"] == ":443"': f'$SERVER["socket"] == "127.0.0.1:{tls_port}"',
            "/etc/letsencrypt/live/clamav.example.org/fullchain.pem": str(tls.cert),
            "/etc/letsencrypt/live/clamav.example.org/privkey.pem": str(tls.key),
            "/home/clamavdb/public_html": str(docroot),
            "/var/www/acme": str(acme),
            "clamav\\.example\\.org": re.escape(MIRROR),
            "/var/log/lighttpd/clamav-access.log": str(access_log),
        },
    )
    default = workdir / "default"
    default.mkdir()
    (default / "local_test").write_bytes(DEFAULT_BODY)
    log = workdir / "error.log"
    conf = workdir / "lighttpd.conf"
    conf.write_text(f"""
server.modules = ( "mod_access", "mod_alias", "mod_accesslog", "mod_openssl" )
server.document-root = "{default}"
server.bind = "127.0.0.1"
server.port = {port}
server.pid-file = "{workdir}/lighttpd.pid"
server.errorlog = "{log}"
mimetype.assign = ( "" => "application/octet-stream" )
{snippet}
""")
    for tree in (docroot, acme, default):
        make_traversable(tree)
    argv = [require("lighttpd"), "-D", "-f", str(conf)]
    check = subprocess.run(
        [require("lighttpd"), "-tt", "-f", str(conf)], capture_output=True, timeout=30
    )
    assert check.returncode == 0, (check.stdout + check.stderr).decode(errors="replace")
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_listening("127.0.0.1", port, proc, log)
        wait_listening("127.0.0.1", tls_port, proc, log)
        yield Served(("127.0.0.1", port), ("127.0.0.1", tls_port), access_log)
    finally:
        stop_process(proc)


LAUNCHERS: dict[str, Callable[[Path, Path, Path, Tls], AbstractContextManager[Served]]] = {
    "lighttpd": lighttpd_with_snippet,
    "nginx": nginx_with_snippet,
    "apache2": apache_with_snippet,
}
# only the servers installed here: no skipped tests for the others
AVAILABLE = [name for name in LAUNCHERS if shutil.which(name, path="/usr/sbin:/usr/bin:/sbin")]


@dataclass(frozen=True)
class Client:
    """Fetch from the mirror as freshclam does: the name in Host (and, over https, in SNI)."""

    served: Served
    ca: Path
    https: bool = False

    @property
    def port(self) -> int:
        return (self.served.https if self.https else self.served.http)[1]

    def tls_context(self, host: str) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        # the mirror's certificate can only name the mirror itself (see Tls): for the shared
        # names the chain is still checked, the name cannot be
        ctx.check_hostname = host.lower() == MIRROR
        return ctx

    def get(
        self, host: str, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        addr = self.served.https if self.https else self.served.http
        conn = http.client.HTTPConnection(*addr, timeout=5)
        if self.https:
            raw = socket.create_connection(addr, timeout=5)
            conn.sock = self.tls_context(host).wrap_socket(raw, server_hostname=host)
        try:
            conn.request(
                "GET",
                path,
                headers={"Host": host, "User-Agent": "ClamAV-MirrorCheck", **(headers or {})},
            )
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()


@pytest.fixture
def docroot(tmp_path: Path) -> Path:
    """A served tree as clam-clientsync leaves it: databases, local_* files, staging inside."""
    to = tmp_path / "public_html"
    (to / "local_stats").mkdir(parents=True)
    (to / "local_test").write_text("Success\n")
    (to / "daily.cvd").write_bytes(DAILY)
    (to / "local_stats" / "usage.txt").write_text("stats\n")
    for staging in (".clam-clientsync/staging", ".clam-clientsync.staging"):
        (to / staging).mkdir(parents=True)
        (to / staging / "daily.cvd").write_bytes(b"half-written")
    (to / ".htpasswd").write_text("secret\n")
    # a challenge-shaped file inside the synced tree must not be what the challenge gets
    (to / ".well-known" / "acme-challenge").mkdir(parents=True)
    (to / ".well-known" / "acme-challenge" / ACME_TOKEN).write_text("from the synced tree\n")
    return to


@pytest.fixture
def acme(tmp_path: Path) -> Path:
    """certbot's --webroot directory, outside the synced tree, holding one challenge."""
    webroot = tmp_path / "acme"
    (webroot / ".well-known" / "acme-challenge").mkdir(parents=True)
    (webroot / ".well-known" / "acme-challenge" / ACME_TOKEN).write_text("challenge answer\n")
    return webroot


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    return make_tls(tmp_path / "tls")


# lighttpd answers a directory without its trailing slash with a redirect to it with the slash
# (its snippet says so): freshclam only asks for files, which it never redirects
DIRECTORY_REDIRECTS = {"lighttpd"}


def check_serves_the_mirror(client: Client, *, directory_redirect: bool = False) -> None:
    """The mirror's names get the files, nothing else does; dot names, listings and
    redirects never happen (but for `directory_redirect`: a directory without its slash)."""
    for host in GOOD_HOSTS:
        status, headers, body = client.get(host, "/local_test")
        assert (status, body) == (200, b"Success\n"), host
        assert "location" not in headers
        assert client.get(host, "/daily.cvd")[::2] == (200, DAILY)
    for host in WRONG_HOSTS:
        assert client.get(host, "/local_test")[2] == DEFAULT_BODY, host
    host = "db.test.clamav.net"
    for path in (
        "/.clam-clientsync/staging/daily.cvd",
        "/.clam-clientsync/",
        "/.clam-clientsync.staging/daily.cvd",
        "/.htpasswd",
        "/local_stats/../.clam-clientsync/staging/daily.cvd",
        "/.well-known/acme-challenge/../../.clam-clientsync/staging/daily.cvd",
        "/.well-known/other",
    ):
        status, _, body = client.get(host, path)
        assert status in (403, 404) and b"half-written" not in body, path
    for path in ("/", "/local_stats", "/local_stats/", "/.well-known/acme-challenge"):
        status, headers, body = client.get(host, path)  # no listing, no redirect
        if directory_redirect and path == "/local_stats" and status == 301:
            to = urllib.parse.urlsplit(headers["location"])  # the same host, with the slash
            assert (to.netloc in ("", f"{host}:{client.port}"), to.path) == (True, path + "/")
            continue
        assert status in (403, 404), (path, status)
        assert "location" not in headers and b"usage.txt" not in body, path


@pytest.mark.parametrize("server", AVAILABLE)
def test_vhost_snippet_answers_the_mirror_names_and_hides_dot_names(
    server: str, tmp_path: Path, docroot: Path, acme: Path, tls: Tls
) -> None:
    with LAUNCHERS[server](tmp_path / server, docroot, acme, tls) as served:
        check_serves_the_mirror(
            Client(served, tls.cert), directory_redirect=server in DIRECTORY_REDIRECTS
        )


@pytest.mark.parametrize("server", AVAILABLE)
def test_vhost_snippet_serves_the_same_over_https(
    server: str, tmp_path: Path, docroot: Path, acme: Path, tls: Tls
) -> None:
    """Port 443: the same names, the same files, no redirect back to http."""
    with LAUNCHERS[server](tmp_path / server, docroot, acme, tls) as served:
        client = Client(served, tls.cert, https=True)
        check_serves_the_mirror(client, directory_redirect=server in DIRECTORY_REDIRECTS)
        # the certificate is valid for the mirror's own name, and can be for nothing else
        # (freshclam checks the name: tests/setup/test_vhosts_freshclam.py)
        strict = ssl.create_default_context(cafile=str(tls.cert))
        with socket.create_connection(served.https, timeout=5) as raw:
            strict.wrap_socket(raw, server_hostname=MIRROR).close()
        with (
            socket.create_connection(served.https, timeout=5) as raw,
            pytest.raises(ssl.SSLCertVerificationError, match=r"db\.test\.clamav\.net"),
        ):
            strict.wrap_socket(raw, server_hostname="db.test.clamav.net")


@pytest.mark.parametrize("server", AVAILABLE)
@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
def test_vhost_snippet_answers_freshclams_header_check(
    server: str, https: bool, tmp_path: Path, docroot: Path, acme: Path, tls: Tls
) -> None:
    """Without DNS freshclam reads the CVD header with `Range: bytes=0-511` and
    If-Modified-Since its own copy's build time: 206 with exactly the header when the file is
    newer, 304 when it is not (nginx only for the file's own date, `if_modified_since exact`;
    Apache for any later one: either way a file newer than the user's copy is sent)."""
    with LAUNCHERS[server](tmp_path / server, docroot, acme, tls) as served:
        client = Client(served, tls.cert, https=https)
        mtime = int(time.time()) - 7200  # a release published two hours ago
        os.utime(docroot / "daily.cvd", (mtime, mtime))
        rng = {"Range": f"bytes=0-{HEADER_SIZE - 1}"}
        for since, expected in ((-3600, {206}), (0, {304}), (3600, {206, 304})):
            ims = email.utils.formatdate(mtime + since, usegmt=True)
            status, headers, body = client.get(
                "db.test.clamav.net", "/daily.cvd", {**rng, "If-Modified-Since": ims}
            )
            assert status in expected, since
            if status == 206:
                assert body == DAILY[:HEADER_SIZE]
                assert headers["content-range"] == f"bytes 0-{HEADER_SIZE - 1}/{len(DAILY)}"
            else:
                assert body == b""


@pytest.mark.parametrize("server", AVAILABLE)
def test_vhost_snippet_answers_lets_encrypt_from_outside_the_synced_tree(
    server: str, tmp_path: Path, docroot: Path, acme: Path, tls: Tls
) -> None:
    """http-01 challenges for the mirror's own name come from certbot's webroot, never from
    the tree clam-clientsync syncs (whose other dot names stay hidden)."""
    with LAUNCHERS[server](tmp_path / server, docroot, acme, tls) as served:
        path = f"/.well-known/acme-challenge/{ACME_TOKEN}"
        status, headers, body = Client(served, tls.cert).get(MIRROR, path)
        assert (status, body) == (200, b"challenge answer\n")
        assert "location" not in headers


def _names_regex(server: str) -> re.Pattern[str]:
    text = (VHOSTS / f"{server}.conf").read_text()
    if server == "nginx":
        return re.compile(re.search(r"~(\^db\S+\$)", text).group(1))  # type: ignore[union-attr]
    found = re.search(r'\$HTTP\["host"\] =~ "([^"]+)"', text)
    assert found
    return re.compile(found.group(1).replace("clamav\\.example\\.org", re.escape(MIRROR)))


@pytest.mark.parametrize("server", ["nginx", "lighttpd"])
def test_wildcard_name_regex(server: str) -> None:
    """The regex standing for db.*.clamav.net, checked without the server."""
    rx = _names_regex(server)
    assert rx.match("db.test.clamav.net") and rx.match("db.pl.clamav.net")
    for wrong in ("db.clamav.net", "db.pl.clamav.net.evil.example", "xdb.pl.clamav.net"):
        assert not rx.match(wrong), wrong
    if server == "lighttpd":
        assert rx.match("database.clamav.net") and rx.match(MIRROR)


def _directives(text: str) -> str:
    return "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))


def test_every_snippet_names_the_mirror_and_denies_dot_names() -> None:
    texts = {p.stem: p.read_text() for p in VHOSTS.glob("*.conf")}
    assert set(texts) == {"nginx", "apache", "lighttpd"}
    apache = texts["apache"]
    assert "ServerName database.clamav.net" in apache
    assert "ServerAlias db.*.clamav.net" in apache
    assert "ServerAlias clamav.example.org" in apache
    assert "DirectorySlash Off" in apache and "Options None" in apache
    assert '<LocationMatch "/\\.(?!well-known/acme-challenge/)">' in apache
    assert 'dir-listing.activate = "disable"' in texts["lighttpd"]
    assert '$HTTP["url"] =~ "/\\.(?!well-known/acme-challenge/)"' in texts["lighttpd"]
    for text in texts.values():
        assert "/home/clamavdb/public_html" in text
        assert "/var/www/acme" in text
        directives = _directives(text)
        assert not re.search(r"(?i)redirect |rewrite|return\s+30|url\.redirect", directives)
        assert "Strict-Transport-Security" not in directives


def test_every_snippet_serves_https_for_the_same_names() -> None:
    """Apache and lighttpd are not run here: at least their https parts are what the guide
    says (nginx's one server block listens on both ports and is run above)."""
    apache = _directives((VHOSTS / "apache.conf").read_text())
    hosts = re.findall(r"<VirtualHost \*:(\d+)>(.*?)</VirtualHost>", apache, re.S)
    assert [port for port, _ in hosts] == ["80", "443"]

    def common(body: str) -> list[str]:
        return [ln.strip() for ln in body.splitlines() if ln.strip() and "SSL" not in ln]

    (_, plain), (_, secure) = hosts
    assert common(plain) == common(secure)  # same names, root, rules and log
    assert "SSLEngine on" in secure and "SSLEngine" not in plain
    assert "SSLCertificateFile /etc/letsencrypt/live/clamav.example.org/fullchain.pem" in secure
    assert "SSLCertificateKeyFile /etc/letsencrypt/live/clamav.example.org/privkey.pem" in secure

    lighttpd = _directives((VHOSTS / "lighttpd.conf").read_text())
    assert '$SERVER["socket"] == ":443"' in lighttpd
    assert 'ssl.engine = "enable"' in lighttpd
    assert 'ssl.pemfile = "/etc/letsencrypt/live/clamav.example.org/fullchain.pem"' in lighttpd
    assert 'ssl.privkey = "/etc/letsencrypt/live/clamav.example.org/privkey.pem"' in lighttpd
    # the names and the tree are chosen by Host alone, whichever socket the request came in on
    assert re.search(r'^\$HTTP\["host"\] =~', lighttpd, re.M)

    nginx = _directives((VHOSTS / "nginx.conf").read_text())
    assert nginx.count("server {") == 1
    assert "listen 443 ssl;" in nginx and "listen 80;" in nginx
