"""ClamAV's own freshclam against the nginx snippet: what the operators' guide says of https,
certificates and redirects is what freshclam (Debian's clamav-freshclam) does.

freshclam runs without DNS (``--no-dns``: it reads each CVD header with a Range request) in a
private mount namespace whose /etc/hosts maps the mirror's names to loopback, so the names in
its URLs, its Host header and its TLS SNI are the real ones and the host's resolver is never
touched. Our synthetic CVDs cannot carry ClamAV's digital signature, so a run that got its files
ends at "Can't verify database integrity", and each test says so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools.harness.cvd import HEADER_SIZE
from tests.setup.test_vhosts import DAILY, MIRROR, Served, Tls, make_tls, nginx_with_snippet


def usable() -> str | None:
    """Why freshclam cannot be run here, or None when it can."""
    if os.geteuid() != 0:
        return "freshclam's /etc/hosts needs a mount namespace: run as root"
    for tool in ("freshclam", "unshare", "nginx"):
        if shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
            return f"{tool} not found: apt-get install clamav-freshclam util-linux nginx"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(usable() is not None, reason=str(usable()))]

REDIRECTOR = "redirector.test"
# written by the snippet's access_log with the 'freshclam' format of test_vhosts.py
LOG_LINE = re.compile(
    r'^(?P<scheme>\S+) (?P<host>\S+) "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" '
    r'(?P<status>\d{3}) (?P<bytes>\d+) "(?P<agent>[^"]*)"$'
)
INTEGRITY = "Can't verify database integrity"  # the expected end: not signed by ClamAV


@dataclass(frozen=True)
class Hit:
    scheme: str
    host: str
    path: str
    status: int
    bytes_sent: int


def hits(served: Served) -> list[Hit]:
    """What freshclam (User-Agent ``ClamAV/...``) asked the mirror, in order."""
    if not served.access_log.exists():
        return []
    out = []
    for line in served.access_log.read_text().splitlines():
        m = LOG_LINE.match(line)
        assert m, line
        if m["agent"].startswith("ClamAV/"):
            out.append(Hit(m["scheme"], m["host"], m["path"], int(m["status"]), int(m["bytes"])))
    return out


def freshclam(workdir: Path, mirrors: list[str], hosts: str, *, ca: Path | None = None) -> str:
    """Run one freshclam update of daily with `mirrors` as its DatabaseMirror lines and
    `hosts` as /etc/hosts, trusting `ca` (CURL_CA_BUNDLE) when given; return what it printed."""
    workdir.mkdir(parents=True, exist_ok=True)
    database = workdir / "db"
    database.mkdir(exist_ok=True)
    (workdir / "hosts").write_text(hosts)
    conf = workdir / "freshclam.conf"
    conf.write_text(
        f"DatabaseDirectory {database}\nDatabaseOwner root\nDNSDatabaseInfo no\n"
        + "".join(f"DatabaseMirror {m}\n" for m in mirrors)
        + "MaxAttempts 1\nConnectTimeout 5\nReceiveTimeout 20\nLogVerbose yes\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("CURL_CA_BUNDLE", "SSL_CERT_FILE")}
    env["LC_ALL"] = "C"
    if ca is not None:
        env["CURL_CA_BUNDLE"] = str(ca)
    script = 'mount --bind "$1" /etc/hosts && shift && exec "$@"'
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
    argv += [str(workdir / "hosts"), "freshclam", "--config-file", str(conf)]
    argv += ["--stdout", "--verbose", "--no-dns", "--update-db=daily"]
    run = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
    return run.stdout + run.stderr


def names_on_loopback(*names: str) -> str:
    return "127.0.0.1 localhost " + " ".join(names) + "\n"


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    return make_tls(tmp_path / "tls")


@pytest.fixture
def mirror(tmp_path: Path, tls: Tls) -> Iterator[Served]:
    """The snippet in nginx serving a daily.cvd, plus a host that redirects to the mirror."""
    docroot, acme = tmp_path / "public_html", tmp_path / "acme"
    docroot.mkdir()
    acme.mkdir()
    (docroot / "daily.cvd").write_bytes(DAILY)

    def redirector(served: Served) -> str:
        to = f"http://{MIRROR}:{served.http[1]}"
        return f"""
    server {{
        listen 127.0.0.1:{served.http[1]};
        server_name {REDIRECTOR};
        access_log {served.access_log} freshclam;
        return 302 {to}$request_uri;
    }}"""

    with nginx_with_snippet(tmp_path / "nginx", docroot, acme, tls, extra=redirector) as served:
        yield served


def fetched_daily(asked: list[Hit], scheme: str, host: str) -> bool:
    """freshclam read the header (206, 512 bytes), then the whole file (200), at scheme/host."""
    return [(h.scheme, h.host, h.path, h.status, h.bytes_sent) for h in asked] == [
        (scheme, host, "/daily.cvd", 206, HEADER_SIZE),
        (scheme, host, "/daily.cvd", 200, len(DAILY)),
    ]


def test_freshclam_gets_the_files_over_https_from_the_mirrors_own_name(
    tmp_path: Path, mirror: Served, tls: Tls
) -> None:
    """A certificate for the mirror's own name (Let's Encrypt's, here our own CA) works."""
    out = freshclam(
        tmp_path / "fc",
        [f"https://{MIRROR}:{mirror.https[1]}"],
        names_on_loopback(MIRROR),
        ca=tls.cert,
    )
    assert fetched_daily(hits(mirror), "https", MIRROR), (hits(mirror), out)
    assert INTEGRITY in out, out


def test_freshclam_verifies_the_certificate_and_its_name(
    tmp_path: Path, mirror: Served, tls: Tls
) -> None:
    """There is no option to skip verification: an untrusted certificate, or one for another
    name (the mirror's own, reached as db.XY.clamav.net), ends the transfer before a request."""
    hosts = names_on_loopback(MIRROR, "db.test.clamav.net")
    untrusted = freshclam(tmp_path / "untrusted", [f"https://{MIRROR}:{mirror.https[1]}"], hosts)
    assert "SSL certificate problem" in untrusted, untrusted
    shared = f"https://db.test.clamav.net:{mirror.https[1]}"
    wrong_name = freshclam(tmp_path / "name", [shared], hosts, ca=tls.cert)
    assert "no alternative certificate subject name matches" in wrong_name, wrong_name
    for out in (untrusted, wrong_name):
        assert "Download failed (60)" in out, out  # CURLE_PEER_FAILED_VERIFICATION
    assert hits(mirror) == []


def test_freshclam_gets_the_files_over_http_with_the_rotation_name(
    tmp_path: Path, mirror: Served
) -> None:
    """`DatabaseMirror http://db.XY.clamav.net`: plain http, Host db.XY.clamav.net."""
    out = freshclam(
        tmp_path / "fc",
        [f"http://db.test.clamav.net:{mirror.http[1]}"],
        names_on_loopback("db.test.clamav.net"),
    )
    assert fetched_daily(hits(mirror), "http", "db.test.clamav.net"), (hits(mirror), out)
    assert INTEGRITY in out, out


def test_freshclam_without_a_scheme_uses_https_and_replaces_db_names(tmp_path: Path) -> None:
    """A bare name is fetched over https on 443, and a bare db.*.clamav.net is replaced by
    https://database.clamav.net (nothing listens there on loopback: only the URLs are read)."""
    out = freshclam(
        tmp_path / "fc",
        ["db.test.clamav.net", MIRROR],
        "127.0.0.2 database.clamav.net db.test.clamav.net " + MIRROR + "\n",
    )
    assert "from https://database.clamav.net/daily.cvd" in out, out
    assert f"from https://{MIRROR}/daily.cvd" in out, out
    assert "db.test.clamav.net/daily.cvd" not in out, out


def test_freshclam_follows_a_redirect_to_another_host(tmp_path: Path, mirror: Served) -> None:
    """freshclam 1.4 follows a redirect (libcurl, up to 3): to a host it was not configured
    with, each request costing one more round trip. The mirror checks refuse redirects anyway
    (docs/monitoring.md): older freshclam fails on them, and nobody checks the target."""
    out = freshclam(
        tmp_path / "fc",
        [f"http://{REDIRECTOR}:{mirror.http[1]}"],
        names_on_loopback(REDIRECTOR, MIRROR),
    )
    asked = hits(mirror)
    assert [(h.host, h.status) for h in asked] == [
        (REDIRECTOR, 302),
        (MIRROR, 206),
        (REDIRECTOR, 302),
        (MIRROR, 200),
    ], (asked, out)
    assert asked[3].bytes_sent == len(DAILY)
    assert INTEGRITY in out, out
