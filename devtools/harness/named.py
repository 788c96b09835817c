"""BIND 9 ``named`` on a loopback port: one primary zone that accepts TSIG-signed updates, or
the views a named.conf fragment declares (db.local by region, with a GeoIP2 directory)."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
from pathlib import Path
from types import TracebackType

from devtools.harness.binaries import require
from devtools.harness.clockshift import env_without_libfaketime
from devtools.harness.ports import free_port, stop_process, wait_listening

ZONE_TEMPLATE = """$ORIGIN {zone}.
$TTL 300
@   IN SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 86400 60
@   IN NS  ns1.{zone}.
ns1 IN A   127.0.0.1
"""


class Named:
    def __init__(
        self,
        workdir: Path,
        *,
        zone: str = "clamav.net",
        key_name: str = "pushsync-update",
        algorithm: str = "hmac-sha256",
        host: str = "127.0.0.1",
        port: int | None = None,
        views_conf: Path | None = None,
        geoip_directory: Path | None = None,
    ) -> None:
        """`views_conf`: a named.conf fragment (``syncd dns render --named-conf``) that declares
        the zone in views, included instead of the single zone statement; the main zone's file
        is still written here, as ``<zone>.zone``. `geoip_directory`: where BIND opens its
        GeoIP2 databases."""
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.zone, self.key_name, self.algorithm = zone, key_name, algorithm
        self.secret = base64.b64encode(secrets.token_bytes(32)).decode()
        self.host = host
        self.port = port or free_port()
        self.log_path = self.workdir / "named.log"
        self.conf_path = self.workdir / "named.conf"
        self.views_conf, self.geoip_directory = views_conf, geoip_directory
        self._proc: subprocess.Popen[bytes] | None = None

    def _write(self) -> None:
        zone_file = self.workdir / f"{self.zone}.zone"
        zone_file.write_text(ZONE_TEMPLATE.format(zone=self.zone))
        d = self.workdir
        geoip = f'geoip-directory "{self.geoip_directory}";' if self.geoip_directory else ""
        zones = (
            f'include "{self.views_conf}";'
            if self.views_conf
            else f"""zone "{self.zone}" {{
    type primary;
    file "{zone_file}";
    allow-update {{ key "{self.key_name}"; }};
}};"""
        )
        self.conf_path.write_text(f"""
options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {self.port} {{ {self.host}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    notify no;
    dnssec-validation no;
    {geoip}
}};
controls {{ }};
key "{self.key_name}" {{ algorithm {self.algorithm}; secret "{self.secret}"; }};
{zones}
""")

    def start(self) -> Named:
        self._write()
        named = require("named")
        env = env_without_libfaketime()
        check = subprocess.run(
            [require("named-checkconf"), str(self.conf_path)], capture_output=True, env=env
        )
        if check.returncode != 0:
            raise RuntimeError(f"named config rejected: {check.stdout.decode(errors='replace')}")
        argv = [named, "-g", "-c", str(self.conf_path), "-n", "1"]
        if os.geteuid() == 0:
            argv += ["-u", "root"]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
            )
        wait_listening(self.host, self.port, self._proc, self.log_path, timeout=20)
        return self

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc)
            self._proc = None

    def dig(self, name: str, rdtype: str, *, source: str | None = None) -> list[str]:
        """Ask this server (over TCP, with the real ``dig``) for `name` relative to the zone,
        from the loopback address `source` if given (all of 127/8 is on lo); return the
        answers' rdata texts, sorted."""
        out = subprocess.run(
            [
                require("dig"),
                f"@{self.host}",
                "-p",
                str(self.port),
                "+short",
                "+tcp",
                *(["-b", source] if source else []),
                *(
                    f"{name}.{self.zone}",
                    rdtype,
                ),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            env=env_without_libfaketime(),  # dig is BIND's too (jemalloc)
            check=False,
        )
        return sorted(out.stdout.split())

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Named:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
