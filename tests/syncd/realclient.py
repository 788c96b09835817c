"""Real mirrors for the end-to-end tests: sshd forcing the real clam-clientsync (the zipapp, run
by the system python3 as a mirror runs it) into a DocumentRoot served by nginx, syncing from
real rsync daemons (directly, or through a fault proxy)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from devtools.harness.account import MirrorAccount, give_to, make_traversable
from devtools.harness.client import client_command
from devtools.harness.nginx import Nginx
from devtools.harness.rsyncd import RsyncDaemon
from devtools.harness.sshd import Sshd, forced_command_line

SOURCE_NAMES = ("rsync1.clamav.net", "rsync2.clamav.net")


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
        fields: dict[str, Any] = {
            "name": self.name,
            "host": self.sshd.host,
            "port": self.sshd.port,
            "user": self.sshd.account.name,
            "country": "PL",
            "admins": [f"Admin <admin@{self.name}>"],
            "host_keys": [self.sshd.host_key_line],
            "http": self.web.base_url,
        }
        fields.update(override)
        lines = ["[[mirrors]]"] + [f"{k} = {json.dumps(v)}" for k, v in fields.items()]
        return "\n".join(lines) + "\n"


def client_config(
    docroot: Path, state: Path, urls: tuple[str, str], rsync: RsyncDaemon, extra: dict[str, str]
) -> str:
    sources = f"{SOURCE_NAMES[0]}={urls[0]} {SOURCE_NAMES[1]}={urls[1]}"
    lines = [
        f"TO={docroot}",
        f"RSYNC_USER={rsync.user}",
        f"RSYNC_PASSWORD={rsync.password}",
        'MODULE="clamavdb"',
        'EXCLUDE="--exclude local_*"',
        f'SOURCES="{sources}"',
        f"STATE_DIR={state}",
        *(f"{k}={v}" for k, v in extra.items()),
    ]
    return "\n".join(lines) + "\n"


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
        home = tmp_path / "mirrors" / name
        docroot, state, etc = home / "htdocs", home / "state", home / "etc"
        for d in (docroot, state, etc):
            d.mkdir(parents=True, exist_ok=True)
        (docroot / "local_test").write_text("Success")
        conf = etc / "clam-clientsync.conf"
        conf.write_text(
            client_config(
                docroot, state, urls or (rsyncs[0].url, rsyncs[1].url), rsyncs[0], extra or {}
            )
        )
        conf.chmod(0o600)
        give_to(account, home)
        make_traversable(docroot)
        forced = " ".join([*client_command(pyz), "--config", str(conf), SOURCE_NAMES[source]])
        server = sshd_factory(authorized_keys=[forced_command_line(pusher_public, forced)])
        web = nginx_factory(docroot)
        mirror = RealMirror(name, home, docroot, conf, server, web)
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
