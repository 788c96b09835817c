"""The vhost snippets of docs/vhosts/: loaded by the real server where it is installed here.

Only nginx is installed by scripts/setup, so only nginx has a launcher; apache2 and lighttpd
snippets get the static checks below (names, wildcard regex, dot names denied) and the guide
says they are untested by a live server. Add a launcher to LAUNCHERS to test another server.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from devtools.harness.account import make_traversable
from devtools.harness.binaries import require
from devtools.harness.ports import free_port, stop_process, wait_listening

ROOT = Path(__file__).resolve().parent.parent.parent
VHOSTS = ROOT / "docs" / "vhosts"
MIRROR = "clamav.mirror.test"
GOOD_HOSTS = ("database.clamav.net", "db.test.clamav.net", "DB.Pl.ClamAV.net", MIRROR)
WRONG_HOSTS = ("db.clamav.net", "evil.example", "database.clamav.net.evil.example")
DEFAULT_BODY = b"default vhost\n"


@contextmanager
def nginx_with_snippet(workdir: Path, docroot: Path) -> Iterator[tuple[str, int]]:
    """Start nginx with docs/vhosts/nginx.conf (placeholders filled in) and a default server."""
    port = free_port()
    snippet = (VHOSTS / "nginx.conf").read_text()
    fill = {
        "listen 80;": f"listen 127.0.0.1:{port};",
        "listen [::]:80;": "",
        "root /home/clamavdb/public_html;": f"root {docroot};",
        "clamav.example.org;": MIRROR + ";",
        "/var/log/nginx/clamav-access.log": str(workdir / "clamav-access.log"),
    }
    for placeholder, value in fill.items():
        assert snippet.count(placeholder) == 1, placeholder
        snippet = snippet.replace(placeholder, value)
    default = workdir / "default"
    default.mkdir(parents=True)
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
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port} default_server;
        server_name _;
        root {default};
    }}
{snippet}
}}
""")
    make_traversable(docroot)
    argv = [require("nginx"), "-c", str(conf), "-p", str(workdir), "-e", str(log)]
    check = subprocess.run([*argv, "-t"], capture_output=True, timeout=30)
    assert check.returncode == 0, check.stderr.decode(errors="replace")
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_listening("127.0.0.1", port, proc, log)
        yield "127.0.0.1", port
    finally:
        stop_process(proc)


LAUNCHERS: dict[str, Callable[[Path, Path], AbstractContextManager[tuple[str, int]]]] = {
    "nginx": nginx_with_snippet,
}
# only the servers installed here: no skipped tests for the others
AVAILABLE = [name for name in LAUNCHERS if shutil.which(name, path="/usr/sbin:/usr/bin:/sbin")]


def get(addr: tuple[str, int], host: str, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(*addr, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": host, "User-Agent": "ClamAV-MirrorCheck"})
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
    (to / "daily.cvd").write_bytes(b"ClamAV-VDB:daily")
    (to / "local_stats" / "usage.txt").write_text("stats\n")
    for staging in (".clam-clientsync/staging", ".clam-clientsync.staging"):
        (to / staging).mkdir(parents=True)
        (to / staging / "daily.cvd").write_bytes(b"half-written")
    (to / ".htpasswd").write_text("secret\n")
    return to


@pytest.mark.parametrize("server", AVAILABLE)
def test_vhost_snippet_answers_the_mirror_names_and_hides_dot_names(
    server: str, tmp_path: Path, docroot: Path
) -> None:
    with LAUNCHERS[server](tmp_path / server, docroot) as addr:
        for host in GOOD_HOSTS:
            status, headers, body = get(addr, host, "/local_test")
            assert (status, body) == (200, b"Success\n"), host
            assert "location" not in headers
            assert get(addr, host, "/daily.cvd")[::2] == (200, b"ClamAV-VDB:daily")
        for host in WRONG_HOSTS:
            assert get(addr, host, "/local_test")[2] == DEFAULT_BODY, host
        host = "db.test.clamav.net"
        for path in (
            "/.clam-clientsync/staging/daily.cvd",
            "/.clam-clientsync/",
            "/.clam-clientsync.staging/daily.cvd",
            "/.htpasswd",
            "/local_stats/../.clam-clientsync/staging/daily.cvd",
        ):
            status, _, body = get(addr, host, path)
            assert status in (403, 404) and b"half-written" not in body, path
        for path in ("/", "/local_stats", "/local_stats/"):  # no listing, no redirect
            status, headers, body = get(addr, host, path)
            assert status in (403, 404), (path, status)
            assert "location" not in headers and b"usage.txt" not in body, path


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


def test_every_snippet_names_the_mirror_and_denies_dot_names() -> None:
    texts = {p.stem: p.read_text() for p in VHOSTS.glob("*.conf")}
    assert set(texts) == {"nginx", "apache", "lighttpd"}
    apache = texts["apache"]
    assert "ServerName database.clamav.net" in apache
    assert "ServerAlias db.*.clamav.net" in apache
    assert "ServerAlias clamav.example.org" in apache
    assert "DirectorySlash Off" in apache and "Options None" in apache
    assert '<LocationMatch "/\\.">' in apache
    assert 'dir-listing.activate = "disable"' in texts["lighttpd"]
    assert '$HTTP["url"] =~ "/\\."' in texts["lighttpd"]
    for text in texts.values():
        assert "/home/clamavdb/public_html" in text
        directives = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
        assert not re.search(r"(?i)redirect |rewrite|return\s+30|url\.redirect", directives)
