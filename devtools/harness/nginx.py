"""nginx on a loopback port serving a mirror's DocumentRoot with name-based virtual hosts.

The mirror vhost answers ``database.clamav.net``, ``db.*.clamav.net`` and the mirror's own
name, as the old guide asked; every other Host gets the default server (a different body),
so tests can tell a misconfigured vhost from a right one.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from devtools.harness.account import make_traversable
from devtools.harness.binaries import require
from devtools.harness.ports import free_port, stop_process, wait_listening

MIRROR_NAMES = ("database.clamav.net", "db.*.clamav.net", "mirror.example.org")
DEFAULT_BODY = "default vhost: not a ClamAV mirror\n"


def nginx_server_name(name: str) -> str:
    """Return `name` as nginx accepts it: a wildcard in the middle becomes a regex."""
    if "*" in name.strip("*."):
        parts = [re.escape(p) for p in name.split("*")]
        return "~^" + "[A-Za-z0-9-]+".join(parts) + "$"
    return name


class Nginx:
    def __init__(
        self,
        workdir: Path,
        docroot: Path,
        *,
        server_names: Iterable[str] = MIRROR_NAMES,
        port: int | None = None,
        extra_locations: Iterable[str] = (),
        tls: tuple[Path, Path] | None = None,
        tls_plain: bool = False,
        log_format: str | None = None,
    ) -> None:
        """`tls`: (certificate chain, key) PEM files for a second port, `tls_port`, served
        over https (`tls_plain`: that port speaks plain http, as a misconfigured vhost
        would)."""
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.docroot = docroot
        self.server_names = list(server_names)
        self.extra_locations = list(extra_locations)
        # the access log's format (nginx variables; default: nginx's combined)
        self.log_format = log_format
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.tls = tls
        self.tls_plain = tls_plain
        self.tls_port = free_port() if tls is not None else 0
        self.conf_path = self.workdir / "nginx.conf"
        self.error_log = self.workdir / "error.log"
        self.access_log = self.workdir / "access.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def https_url(self, name: str = "localhost") -> str:
        """The https port's URL for `name` (which must resolve to loopback: localhost)."""
        return f"https://{name}:{self.tls_port}"

    def reload(self) -> None:
        """Re-read the configuration (a renewed certificate), as ``nginx -s reload``: the
        next connection gets it."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGHUP)

    def _write_config(self) -> None:
        default_root = self.workdir / "default"
        default_root.mkdir(exist_ok=True)
        (default_root / "index.html").write_text(DEFAULT_BODY)
        (default_root / "local_test").write_text(DEFAULT_BODY)
        tmp = self.workdir / "tmp"
        tmp.mkdir(exist_ok=True)
        user = "user root;" if os.geteuid() == 0 else ""
        listen = f"listen {self.host}:{self.port}"
        locations = "\n".join(self.extra_locations)
        tls = ""
        if self.tls is not None:
            ssl = "" if self.tls_plain else " ssl"
            tls = (
                f"listen {self.host}:{self.tls_port}{ssl}; "
                f"ssl_certificate {self.tls[0]}; ssl_certificate_key {self.tls[1]};"
            )
        log_format = f"log_format custom '{self.log_format}';" if self.log_format else ""
        access_log = f"{self.access_log} custom" if self.log_format else str(self.access_log)
        self.conf_path.write_text(f"""
{user}
daemon off;
master_process on;
worker_processes 1;
pid {self.workdir / "nginx.pid"};
error_log {self.error_log} info;
events {{ worker_connections 256; }}
http {{
    {log_format}
    access_log {access_log};
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type application/octet-stream;
    server {{
        {listen} default_server;
        {tls.replace(";", " default_server;", 1) if tls else ""}
        server_name _;
        root {default_root};
    }}
    server {{
        {listen};
        {tls}
        server_name {" ".join(map(nginx_server_name, self.server_names))};
        root {self.docroot};
        location ~ /\\. {{ deny all; }}
        {locations}
    }}
}}
""")

    def start(self) -> Nginx:
        self._write_config()
        make_traversable(self.docroot)
        nginx = require("nginx")
        argv = [
            nginx,
            "-c",
            str(self.conf_path),
            "-p",
            str(self.workdir),
            "-e",
            str(self.error_log),
        ]
        check = subprocess.run([*argv, "-t"], capture_output=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx config rejected: {check.stderr.decode(errors='replace')}")
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_listening(self.host, self.port, self._proc, self.error_log)
        if self.tls is not None:
            wait_listening(self.host, self.tls_port, self._proc, self.error_log)
        return self

    def reopen_logs(self) -> None:
        """Make nginx reopen its logs (SIGUSR1, as logrotate's postrotate does) and wait until
        the access log exists again."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGUSR1)
        for _ in range(500):
            if self.access_log.exists():
                return
            time.sleep(0.01)
        raise RuntimeError("nginx did not reopen its access log")

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc)
            self._proc = None

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
