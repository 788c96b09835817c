"""ClamAV's own freshclam (Debian clamav-freshclam) as the acceptance oracle, on loopback only.

freshclam reads the ``current.cvd`` TXT record through the system resolver, which knows only
port 53 and /etc/resolv.conf. So the harness's BIND answers on 127.53.0.1:53 (an address added
to ``lo`` for the run and removed after), and freshclam runs in a private mount namespace in
which /etc/resolv.conf names that server: the host's resolver is never touched.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devtools.harness.binaries import MissingBinary
from devtools.harness.cvd import HEADER_SIZE, build_cvd
from devtools.harness.named import Named

DNS_ADDRESS = "127.53.0.1"
# combined log format: "GET /daily-28034.cdiff HTTP/1.1" 200 1234 "-" "ClamAV/1.4.6 (...)"
ACCESS_LINE = re.compile(
    r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) '
    r'(?P<bytes>\d+) "[^"]*" "(?P<agent>[^"]*)"'
)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    status: int
    bytes_sent: int
    agent: str


def freshclam_requests(access_log: Path) -> list[Request]:
    """Return the requests freshclam (User-Agent ``ClamAV/...``) made, in order."""
    out = []
    for line in access_log.read_text(errors="replace").splitlines():
        m = ACCESS_LINE.search(line)
        if m and m["agent"].startswith("ClamAV/"):
            out.append(
                Request(m["method"], m["path"], int(m["status"]), int(m["bytes"]), m["agent"])
            )
    return out


def usable() -> str | None:
    """Why freshclam cannot be run here, or None when it can (root: namespaces, ``lo``)."""
    if os.geteuid() != 0:
        return "freshclam's DNS needs a mount namespace and a loopback address: run as root"
    for tool in ("freshclam", "unshare", "ip"):
        if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin:/sbin") is None:
            return f"{tool} not found: apt-get install clamav-freshclam util-linux iproute2"
    return None


@contextmanager
def dns_on_port_53(workdir: Path) -> Iterator[Named]:
    """Start the harness BIND on 127.53.0.1:53 for freshclam's resolver."""
    ip = shutil.which("ip") or "/usr/sbin/ip"
    subprocess.run(
        [ip, "addr", "add", f"{DNS_ADDRESS}/32", "dev", "lo"],
        check=True,
        capture_output=True,
        timeout=30,
    )
    try:
        with Named(workdir, host=DNS_ADDRESS, port=53) as named:
            yield named
    finally:
        subprocess.run(
            [ip, "addr", "del", f"{DNS_ADDRESS}/32", "dev", "lo"],
            check=False,
            capture_output=True,
            timeout=30,
        )


def write_cld(directory: Path, name: str, version: int) -> Path:
    """Write a local ``<name>.cld`` (the header over the unpacked tar), as freshclam keeps a
    database it has patched: it can apply a cdiff to it without ClamAV's signature."""
    data = build_cvd(name, version)
    path = directory / f"{name}.cld"
    path.write_bytes(data[:HEADER_SIZE] + gzip.decompress(data[HEADER_SIZE:]))
    return path


@dataclass
class Freshclam:
    workdir: Path
    dns: Named

    def __post_init__(self) -> None:
        self.database = self.workdir / "db"
        self.database.mkdir(parents=True, exist_ok=True)
        self.resolv = self.workdir / "resolv.conf"
        self.resolv.write_text(f"nameserver {DNS_ADDRESS}\noptions attempts:1 timeout:2\n")

    def run(self, mirror_url: str, *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run one freshclam update against `mirror_url` (``DatabaseMirror``), DNS from our
        BIND (``DNSDatabaseInfo current.cvd.<zone>``); return the finished process."""
        freshclam = shutil.which("freshclam")
        if freshclam is None:
            raise MissingBinary("freshclam not found: apt-get install clamav-freshclam")
        conf = self.workdir / "freshclam.conf"
        conf.write_text(
            f"DatabaseDirectory {self.database}\n"
            f"UpdateLogFile {self.workdir / 'freshclam.log'}\n"
            f"DNSDatabaseInfo current.cvd.{self.dns.zone}\n"
            f"DatabaseMirror {mirror_url}\n"
            "DatabaseOwner root\nMaxAttempts 1\nConnectTimeout 5\nReceiveTimeout 20\n"
            "ScriptedUpdates yes\nLogVerbose yes\nChecks 1\n"
        )
        script = 'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"'
        argv = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            str(self.resolv),
            freshclam,
            "--config-file",
            str(conf),
            "--stdout",
            "--verbose",
        ]
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "LC_ALL": "C"},
        )
