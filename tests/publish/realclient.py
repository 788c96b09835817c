"""Real mirrors for the end-to-end tests: sshd forcing the real clam-clientsync (the zipapp, run
by the system python3 as a mirror runs it) into a DocumentRoot served by nginx, syncing from
real rsync daemons (directly, or through a fault proxy)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from devtools.harness.account import MirrorAccount
from devtools.harness.client import SOURCE_NAMES, client_command, client_config, mirror_home
from devtools.harness.documents import inventory_block, sshd_mirror
from devtools.harness.nginx import Nginx
from devtools.harness.rsyncd import RsyncDaemon
from devtools.harness.sshd import Sshd, forced_command_line


def client_pyz(request: pytest.FixtureRequest) -> Path:
    """The real clam-clientsync zipapp (SYNCD_TEST_CLIENT_PYZ overrides, to try another)."""
    override = os.environ.get("SYNCD_TEST_CLIENT_PYZ")
    if override:
        return Path(override)
    pyz: Path = request.getfixturevalue("client_zipapp")
    return pyz


@dataclass
class RealMirror:
    name: str
    home: Path
    docroot: Path
    conf: Path
    sshd: Sshd
    web: Nginx

    def inventory_block(self, **override: Any) -> str:
        return inventory_block(
            {**sshd_mirror(self.name, self.sshd), "http": self.web.base_url, **override}
        )


MirrorMaker = Callable[..., RealMirror]


def real_fleet(
    tmp_path: Path,
    sshd_factory: Callable[..., Sshd],
    nginx_factory: Callable[..., Nginx],
    account: MirrorAccount,
    pusher_public: str,
    pyz: Path,
    rsyncs: tuple[RsyncDaemon, RsyncDaemon],
) -> Iterator[MirrorMaker]:
    made: list[RealMirror] = []

    def make(
        name: str,
        *,
        urls: tuple[str, str] | None = None,
        source: int = 0,
        extra: dict[str, str] | None = None,
    ) -> RealMirror:
        rsync = rsyncs[0]
        laid = mirror_home(
            tmp_path / "mirrors" / name,
            account,
            client_command(pyz),
            SOURCE_NAMES[source],
            lambda docroot, state: client_config(
                docroot,
                state,
                urls or (rsyncs[0].url, rsyncs[1].url),
                rsync.user,
                rsync.password,
                extra,
            ),
        )
        line = forced_command_line(pusher_public, laid.forced_command)
        server = sshd_factory(authorized_keys=[line])
        web = nginx_factory(laid.docroot)
        mirror = RealMirror(name, laid.home, laid.docroot, laid.conf, server, web)
        made.append(mirror)
        return mirror

    yield make
    kill_clients(tmp_path / "mirrors")


def kill_clients(root: Path) -> None:
    """Kill clients still running from `root` (sshd cannot signal a forced command for us)."""
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(root) in cmdline:
            with contextlib.suppress(psutil.Error):
                for child in proc.children(recursive=True):
                    child.kill()
                proc.kill()
