"""OpenSSH ``sshd -D`` on a loopback port with its own config, host key and authorized_keys.

sshd runs as the current user (root in CI) and authenticates the mirror account only, by
public key, from an ``AuthorizedKeysFile`` this harness writes (typically forced commands).
Several instances can run at once: each has its own directory, port, host key and log.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from devtools.harness.account import MirrorAccount, make_traversable
from devtools.harness.binaries import require
from devtools.harness.ports import free_port, stop_process, wait_listening
from devtools.harness.sshkeys import generate_keypair


def forced_command_line(public_line: str, command: str, *, options: str = "restrict") -> str:
    """Return an authorized_keys line forcing `command` for the key `public_line`."""
    if '"' in command or "\n" in command:
        raise ValueError("forced command must not contain double quotes or newlines")
    return f'{options},command="{command}" {public_line}'


class Sshd:
    """A real OpenSSH server for one mirror account."""

    def __init__(
        self,
        workdir: Path,
        *,
        authorized_keys: Iterable[str],
        account: MirrorAccount,
        extra_config: Iterable[str] = (),
        host: str = "127.0.0.1",
        port: int | None = None,
        wrapper: Iterable[str] = (),
    ) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.account, self.host = account, host
        self.port = port or free_port(host)
        self.extra_config = list(extra_config)
        # argv before sshd's (it must exec sshd, keeping the pid): e.g. a mount namespace
        self.wrapper = list(wrapper)
        self.host_key = generate_keypair(self.workdir / "ssh_host_ed25519_key", "test-host")
        self.authorized_keys_path = self.workdir / "authorized_keys"
        self.log_path = self.workdir / "sshd.log"
        self.config_path = self.workdir / "sshd_config"
        self.set_authorized_keys(authorized_keys)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def host_key_line(self) -> str:
        """The host's public key, as pinned in an inventory (``ssh-ed25519 AAAA...``)."""
        kind, blob = self.host_key.public_line.split()[:2]
        return f"{kind} {blob}"

    def ssh_argv(self, private_key: Path, known_hosts: Path, *command: str) -> list[str]:
        """OpenSSH's ``ssh`` argv for the mirror account, this host's key pinned in
        `known_hosts` (written here), no config file, no agent, no prompts."""
        known_hosts.write_text(f"[{self.host}]:{self.port} {self.host_key_line}\n")
        return [
            require("ssh"), "-F", "/dev/null", "-i", str(private_key), "-p", str(self.port),
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
            f"{self.account.name}@{self.host}", *command,
        ]  # fmt: skip

    def set_authorized_keys(self, lines: Iterable[str]) -> None:
        """Replace the authorized_keys file (takes effect for the next connection)."""
        self.authorized_keys_path.write_text("".join(f"{line}\n" for line in lines))
        self.authorized_keys_path.chmod(0o644)

    def _write_config(self) -> None:
        lines = [
            f"ListenAddress {self.host}:{self.port}",
            f"HostKey {self.host_key.private}",
            f"PidFile {self.workdir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.authorized_keys_path}",
            f"AllowUsers {self.account.name}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",  # pytest's tmp tree is not a home directory
            "PermitUserEnvironment no",
            "AllowAgentForwarding no",
            "AllowTcpForwarding no",
            "X11Forwarding no",
            "PrintMotd no",
            "PrintLastLog no",
            "UseDNS no",
            "MaxStartups 400:30:800",
            "MaxSessions 10",
            "LoginGraceTime 30",
            "LogLevel VERBOSE",
            "Subsystem sftp internal-sftp",
            *self.extra_config,
        ]
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self) -> Sshd:
        self._write_config()
        make_traversable(self.workdir)
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        sshd = require("sshd")
        check = subprocess.run([sshd, "-t", "-f", str(self.config_path)], capture_output=True)
        if check.returncode != 0:
            raise RuntimeError(f"sshd config rejected: {check.stderr.decode(errors='replace')}")
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [*self.wrapper, sshd, "-D", "-e", "-f", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        wait_listening(self.host, self.port, self._proc, self.log_path)
        return self

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc)
            self._proc = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Sshd:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
