"""Fixtures for syncd publish tests: fake mirrors behind real sshd, and running syncd."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools.harness.account import MirrorAccount
from devtools.harness.documents import LAB_INVENTORY
from devtools.harness.nginx import Nginx
from devtools.harness.rsyncd import RsyncDaemon
from devtools.harness.sshd import Sshd
from devtools.harness.sshkeys import KeyPair
from tests.publish.fakes import MirrorFactory, fake_fleet
from tests.publish.realclient import MirrorMaker, client_pyz, real_fleet

FAST_POLICY = """
[policy]
connect_timeout = 3
login_timeout = 3
command_timeout = 4
run_timeout = 20
max_attempts = 3
backoff_initial = 0.2
backoff_max = 0.5
poll_initial = 0.3
poll_max = 0.6
http_timeout = 3
"""


@pytest.fixture
def fake_mirror(
    tmp_path: Path,
    sshd_factory: Callable[..., Sshd],
    account: MirrorAccount,
    keypair: KeyPair,
) -> Iterator[MirrorFactory]:
    """``fake_mirror(name, behaviour)``: a real sshd forcing a fake client script."""
    yield from fake_fleet(tmp_path, sshd_factory, account, keypair.public_line)


@pytest.fixture
def real_mirror(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sshd_factory: Callable[..., Sshd],
    nginx_factory: Callable[..., Nginx],
    account: MirrorAccount,
    keypair: KeyPair,
    rsync_pair: tuple[RsyncDaemon, RsyncDaemon],
) -> Iterator[MirrorMaker]:
    """``real_mirror(name, ...)``: a real sshd forcing the real client (the zipapp) into its own
    tree, served by nginx, pulling from `rsync_pair`."""
    yield from real_fleet(
        tmp_path,
        sshd_factory,
        nginx_factory,
        account,
        keypair.public_line,
        client_pyz(request),
        rsync_pair,
    )


@dataclass
class Syncd:
    """Run ``syncd`` as a process, as operators do."""

    workdir: Path
    key: Path

    @property
    def inventory(self) -> Path:
        return self.workdir / "inventory.toml"

    @property
    def state(self) -> Path:
        return self.workdir / "state.sqlite"

    @property
    def config(self) -> Path:
        return self.workdir / "syncd.toml"

    def write(self, inventory: str, policy: str = FAST_POLICY, *, lab: bool = True) -> None:
        """Write the inventory (a lab one, unless not `lab`: the mirrors listen on loopback)
        and syncd.toml."""
        self.inventory.write_text((LAB_INVENTORY if lab else "") + inventory)
        self.config.write_text(
            f'key = "{self.key}"\ninventory = "{self.inventory}"\nstate = "{self.state}"\n' + policy
        )

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "syncd", *args]

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "COLUMNS": "200"}
        return subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.workdir,
            env=env,
            check=False,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.workdir,
        )

    def publish(self, *extra: str, timeout: float = 60) -> tuple[int, dict[str, Any], str]:
        """Run ``syncd publish --json``; return exit code, the JSON document, and stderr."""
        proc = self.run("publish", "--config", str(self.config), "--json", *extra, timeout=timeout)
        doc = json.loads(proc.stdout) if proc.stdout.strip() else {}
        return proc.returncode, doc, proc.stderr


@pytest.fixture
def syncd(tmp_path: Path, keypair: KeyPair) -> Syncd:
    work = tmp_path / "syncd"
    work.mkdir()
    return Syncd(work, keypair.private)


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in doc["mirrors"]}
