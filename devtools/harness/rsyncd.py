"""``rsync --daemon --no-detach`` on a loopback port, with auth users and a secrets file."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import TracebackType

from devtools.harness.binaries import require
from devtools.harness.ports import free_port, stop_process, wait_listening


class RsyncDaemon:
    """An rsync daemon serving `tree` as `module`, password-protected for `user` (or, with
    `anonymous`, open to all: a hub, a mirror serving its tree to others)."""

    def __init__(
        self,
        workdir: Path,
        tree: Path,
        *,
        name: str = "rsync1",
        module: str = "clamavdb",
        user: str = "clamsync",
        password: str = "s3cret-rsync",
        max_connections: int = 0,
        port: int | None = None,
        anonymous: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        self.workdir = workdir / name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.tree, self.name, self.module = tree, name, module
        self.user, self.password = user, password
        self.host = host  # a loopback address; with port 873 (as root) a source's default
        self.port = port or free_port(host)
        self.log_path = self.workdir / "rsyncd.log"
        self.secrets_path = self.workdir / "rsyncd.secrets"
        self.conf_path = self.workdir / "rsyncd.conf"
        self.max_connections = max_connections
        self.anonymous = anonymous
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rsync://{self.host}:{self.port}"

    def _write_config(self) -> None:
        self.secrets_path.write_text(f"{self.user}:{self.password}\n")
        self.secrets_path.chmod(0o600)
        uid = "root" if os.geteuid() == 0 else str(os.geteuid())
        lines = [
            f"pid file = {self.workdir / 'rsyncd.pid'}",
            f"lock file = {self.workdir / 'rsyncd.lock'}",
            f"log file = {self.log_path}",
            f"address = {self.host}",
            "use chroot = no",
            f"uid = {uid}",
            f"gid = {os.getegid()}",
            f"max connections = {self.max_connections}",
            "",
            f"[{self.module}]",
            f"    path = {self.tree}",
            "    read only = yes",
        ]
        if not self.anonymous:
            lines += [
                f"    auth users = {self.user}",
                f"    secrets file = {self.secrets_path}",
                "    strict modes = yes",
            ]
        lines.append("")
        self.conf_path.write_text("\n".join(lines))

    def start(self) -> RsyncDaemon:
        self._write_config()
        argv = [
            require("rsync"),
            "--daemon",
            "--no-detach",
            f"--config={self.conf_path}",
            f"--port={self.port}",
            f"--address={self.host}",
        ]
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_listening(self.host, self.port, self._proc, self.log_path)
        return self

    def stop(self) -> None:
        if self._proc is not None:
            # rsync's daemon takes ~0.4 s to honour SIGTERM; it keeps no state worth a clean exit
            stop_process(self._proc, kill=True)
            self._proc = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> RsyncDaemon:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
