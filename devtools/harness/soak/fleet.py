"""The soak's fleet: a small fleet of real mirrors (sshd forcing the client zipapp, nginx
serving its tree), two rsync daemons, and the ``syncd publish`` that pushes to them.

Topology (all loopback): syncd -> FaultProxy -> sshd -> clam-clientsync -> FaultProxy -> rsyncd.
Mirror 0's DocumentRoot sits on a 2 MB tmpfs when mounting is permitted (the disk-full fault).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import psutil

from devtools.harness.account import MirrorAccount, make_traversable, mirror_account
from devtools.harness.client import (
    SOURCE_NAMES,
    build_client_zipapp,
    client_command,
    client_config,
    mirror_home,
)
from devtools.harness.cvd import build_cvd, write_timestamp
from devtools.harness.documents import LAB_INVENTORY, inventory_block
from devtools.harness.faultproxy import FaultProxy
from devtools.harness.faults import cmdline, descendants, tiny_tmpfs
from devtools.harness.nginx import Nginx
from devtools.harness.rsyncd import RsyncDaemon
from devtools.harness.sshd import Sshd, forced_command_line
from devtools.harness.sshkeys import generate_keypair

PAYLOAD = 48 * 1024  # each CVD ~50 KB: the 2 MB tmpfs holds a few releases, not a filler
CLIENT_LIMITS = {"TIMEOUT": "4", "CONTIMEOUT": "3", "DEADLINE": "10", "MAX_ROUNDS": "3"}
POLICY = """
[policy]
connect_timeout = 2
login_timeout = 3
command_timeout = 14
run_timeout = 40
max_attempts = 2
backoff_initial = 0.2
backoff_max = 0.4
poll_initial = 0.3
poll_max = 0.6
http_timeout = 3
"""


@dataclass
class Mirror:
    name: str
    home: Path
    docroot: Path
    state: Path
    conf: Path
    sshd: Sshd
    proxy: FaultProxy
    web: Nginx
    keep_token: str


class Fleet:
    """Start `mirrors` real mirrors and the sources under `root`; ``close()`` stops all."""

    def __init__(self, root: Path, mirrors: int, *, log: Callable[[str], None] = print):
        self.root, self.log = root, log
        self.stack = contextlib.ExitStack()
        self.mirrors: list[Mirror] = []
        self.size = mirrors
        self.daily = 30000
        self.stamp = 0  # the source tree's last timestamp (unix seconds)
        self.tmpfs: Path | None = None
        self.tmpfs_error: str | None = None

    # -- setup ----------------------------------------------------------------------------

    def start(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        # children of this process from before the fleet (another test's) are not ours to count
        self.foreign = descendants([os.getpid()])
        root = self.root
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o711)
        make_traversable(root)
        self.account: MirrorAccount = mirror_account()
        self.key = generate_keypair(root / "keys" / "pusher", "soak-pusher")
        self.password = "pw-" + secrets.token_hex(8)
        self.tree = root / "source"
        self.tree.mkdir()
        self._write_release(atomic=True)
        self.rsyncd = [
            self.stack.enter_context(
                RsyncDaemon(root / "rsyncd", self.tree, name=n, password=self.password)
            )
            for n in ("rsync1", "rsync2")
        ]
        self.rproxy = [
            self.stack.enter_context(FaultProxy("127.0.0.1", r.port)) for r in self.rsyncd
        ]
        self.pyz = build_client_zipapp(root / "client")
        for i in range(self.size):
            self.mirrors.append(self._mirror(i))
        self.syncd_dir = root / "syncd"
        self.syncd_dir.mkdir()
        (self.syncd_dir / "tmp").mkdir()
        self.inventory = self.syncd_dir / "inventory.toml"
        self.inventory.write_text(
            LAB_INVENTORY + "".join(self._inventory_block(m) for m in self.mirrors)
        )
        self.config = self.syncd_dir / "syncd.toml"
        self.config.write_text(
            f'key = "{self.key.private}"\ninventory = "{self.inventory}"\n'
            f'state = "{self.syncd_dir / "state.sqlite"}"\n' + POLICY
        )

    def _mirror(self, i: int) -> Mirror:
        name = f"m{i}.soak.test"
        home = self.root / "mirrors" / name
        home.mkdir(parents=True)
        docroot = home / "htdocs"
        if i == 0:
            try:
                self.tmpfs = self.stack.enter_context(tiny_tmpfs(home / "disk", "2m"))
                docroot = self.tmpfs / "htdocs"
            except OSError as err:
                self.tmpfs_error = str(err)
        docroot.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(8)
        (docroot / "local_keep.txt").write_text(token)
        urls = (
            f"rsync://127.0.0.1:{self.rproxy[0].port}",
            f"rsync://127.0.0.1:{self.rproxy[1].port}",
        )
        laid = mirror_home(
            home,
            self.account,
            client_command(self.pyz),
            SOURCE_NAMES[i % 2],
            lambda docroot, state: client_config(
                docroot, state, urls, self.rsyncd[0].user, self.password, CLIENT_LIMITS
            ),
            docroot=docroot,
        )
        sshd = self.stack.enter_context(
            Sshd(
                self.root / "sshd" / name,
                authorized_keys=[forced_command_line(self.key.public_line, laid.forced_command)],
                account=self.account,
            )
        )
        proxy = self.stack.enter_context(FaultProxy("127.0.0.1", sshd.port))
        web = self.stack.enter_context(Nginx(self.root / "nginx" / name, docroot))
        return Mirror(name, home, docroot, laid.state, laid.conf, sshd, proxy, web, token)

    def _inventory_block(self, m: Mirror) -> str:
        return inventory_block(
            {
                "name": m.name,
                "host": "127.0.0.1",
                "port": m.proxy.port,
                "user": self.account.name,
                "country": "PL",
                "admins": [f"Admin <admin@{m.name}>"],
                "host_keys": [m.sshd.host_key_line],
                "http": m.web.base_url,
            }
        )

    def _write_release(self, *, atomic: bool) -> dict[str, bytes]:
        files = {
            "daily": build_cvd("daily", self.daily, payload_size=PAYLOAD),
            "main": build_cvd("main", 62, payload_size=PAYLOAD),
            "bytecode": build_cvd("bytecode", 335, payload_size=1024),
        }
        if atomic:
            for db, data in files.items():
                tmp = self.root / f".{db}.cvd.new"
                tmp.write_bytes(data)
                os.replace(tmp, self.tree / f"{db}.cvd")
            # the real clock, and at least a second further on with every release
            self.stamp = max(int(time.time()), self.stamp + 1)
            write_timestamp(self.tree, self.stamp)
        return files

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._kill_strays()
        self.stack.close()

    def _kill_strays(self) -> None:
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if str(self.root) in cmdline(proc) and proc.pid != os.getpid():
                    # children first: an nginx master killed alone leaves its workers behind
                    for child in proc.children(recursive=True):
                        with contextlib.suppress(psutil.Error):
                            child.kill()
                    proc.kill()

    # -- what a round acts on -------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.mirrors]

    @property
    def server_pids(self) -> list[int]:
        pids = []
        for m in self.mirrors:
            pids += [m.sshd.pid or 0, *_nginx_pids(m.web)]
        pids += [self.rsyncd_pid(i) for i in range(len(self.rsyncd))]
        return [p for p in pids if p]

    @property
    def state_db(self) -> Path:
        return self.syncd_dir / "state.sqlite"

    def rsyncd_pid(self, i: int) -> int:
        proc = self.rsyncd[i]._proc
        return proc.pid if proc is not None else 0

    def syncd(self, *args: str) -> subprocess.Popen[str]:
        env = {**os.environ, "COLUMNS": "200", "TMPDIR": str(self.syncd_dir / "tmp")}
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "syncd",
                "publish",
                "--config",
                str(self.config),
                "--json",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.syncd_dir,
            env=env,
        )

    def restore(self) -> None:
        """Every proxy back to passing, every daemon a fault killed started again."""
        for m in self.mirrors:
            m.proxy.set("pass", delay_s=0, drop_after=0, rate_bps=0)
            if m.sshd._proc is not None and m.sshd._proc.poll() is not None:
                m.sshd._proc = None
                m.sshd.start()
        for i, r in enumerate(self.rsyncd):
            self.rproxy[i].set("pass", delay_s=0, drop_after=0, rate_bps=0)
            if r._proc is not None and r._proc.poll() is not None:
                r._proc = None
                r.start()


def _nginx_pids(web: Nginx) -> list[int]:
    proc = web._proc
    if proc is None:
        return []
    with contextlib.suppress(psutil.Error):
        return [proc.pid, *(c.pid for c in psutil.Process(proc.pid).children(recursive=True))]
    return [proc.pid]


def soak_root() -> Path:
    """A root outside /tmp/pytest-of-<user> (see tests/publish/fixtures.py on why)."""
    base = Path(tempfile.mkdtemp(prefix="soak-", dir="/var/tmp" if os.geteuid() == 0 else None))
    base.chmod(0o711)
    return base
