"""The client that checks the promise DNS keeps (a client is never sent to a mirror that lacks
what the TXT record announces), and the fleet it checks: shared by ``test_invariant.py`` (a
plain zone, a secondary and a cache) and ``test_invariant_views.py`` (db.local by region).

The client, every 100 ms, as freshclam and the resolvers in front of it would: reads the TXT
record and the pools from each of its readers (a server asked directly, through a view's key
or from a view's source address, or a caching resolver), keeps each A set for the TTL it came
with, and fetches ``daily-N.cdiff`` and the ``daily.cvd`` header from every address it holds,
N being the newest daily any reader's TXT announces.
"""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from devtools.harness.cvd import write_release_tree
from devtools.harness.documents import lab_inventory
from devtools.harness.named import Answer, _NamedProcess
from devtools.harness.nginx import Nginx
from devtools.harness.record import record_publish


def push_tree(docroot: Path, daily: int) -> None:
    """Bring `docroot` to release `daily` as a publish does: each file replaced atomically,
    the patches before the CVDs that need them."""
    staging = docroot.parent / f"{docroot.name}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    docroot.mkdir(parents=True, exist_ok=True)
    names = write_release_tree(staging, daily, cdiffs=5, signs=False)
    for name in sorted(names, key=lambda n: (n.endswith(".cvd"), n)):
        os.replace(staging / name, docroot / name)
    shutil.rmtree(staging)


@dataclass
class Violation:
    at: float
    path: str
    pool: str
    address: str
    announced: int
    why: str


Ask = Callable[[str, str], Answer]


@dataclass(frozen=True)
class Reader:
    """One way the client reads DNS: its name in the report, how it asks (name, type), and
    the pools it asks for (the TXT too unless `txt` is false)."""

    path: str
    ask: Ask
    pools: tuple[str, ...]
    txt: bool = True


def server_reader(path: str, server: _NamedProcess, pools: Sequence[str]) -> Reader:
    """A server (or a cache) asked directly, as any client would."""
    return Reader(path, lambda name, rdtype: server.query(name, rdtype, timeout=2.0), tuple(pools))


@dataclass
class Client:
    """A freshclam-like client that checks the promise every 100 ms until stopped."""

    readers: list[Reader]
    http_port: int
    violations: list[Violation] = field(default_factory=list)
    checks: int = 0
    held: dict[tuple[str, str], tuple[tuple[str, ...], float]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def announced(self) -> int | None:
        seen = []
        for reader in self.readers:
            if reader.txt:
                txt = reader.ask("current.cvd", "TXT").texts
                if txt:
                    seen.append(int(txt[0].strip('"').split(":")[2]))
        return max(seen, default=None)

    def fetch(self, address: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(address, self.http_port, timeout=5)
        try:
            conn.request("GET", path, headers={"Host": "db.test.clamav.net", **headers})
            resp = conn.getresponse()
            return resp.status, resp.read(4096)
        finally:
            conn.close()

    def serves(self, address: str, daily: int) -> str | None:
        """None when the mirror at `address` serves what TXT `daily` announces, else why not."""
        status, _ = self.fetch(address, f"/daily-{daily}.cdiff", {})
        if status != 200:
            return f"daily-{daily}.cdiff: HTTP {status}"
        status, head = self.fetch(address, "/daily.cvd", {"Range": "bytes=0-511"})
        fields = head.decode("ascii", "replace").split(":")
        if status not in (200, 206) or len(fields) < 3 or not fields[2].isdigit():
            return f"daily.cvd header: HTTP {status}"
        if int(fields[2]) < daily:
            return f"daily.cvd is {fields[2]}"
        return None

    def tick(self) -> None:
        now = time.monotonic()
        daily = self.announced()
        for reader in self.readers:
            for pool in reader.pools:
                answer = reader.ask(pool, "A")
                if answer.texts and answer.ttl is not None:
                    self.held[(reader.path, pool)] = (answer.texts, now + answer.ttl)
        self.held = {k: v for k, v in self.held.items() if v[1] > time.monotonic()}
        if daily is None:
            return
        verdicts: dict[str, str | None] = {}
        for (path, pool), (addresses, _) in self.held.items():
            for address in addresses:
                if address not in verdicts:
                    verdicts[address] = self.serves(address, daily)
                self.checks += 1
                why = verdicts[address]
                if why is not None:
                    self.violations.append(Violation(time.time(), path, pool, address, daily, why))

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.tick()
                self.stop.wait(0.1)
        except BaseException as err:  # the test fails with it
            self.error = err

    @contextmanager
    def running(self, *, linger_s: float) -> Iterator[None]:
        """Check in a thread while the block runs; go on `linger_s` after it (the client holds
        what it fetched for its TTL), then stop."""
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        try:
            yield
            time.sleep(linger_s)
        finally:
            self.stop.set()
            thread.join(timeout=30)


@dataclass
class Fleet:
    """The mirrors (name -> (address, country)), each a real nginx serving its own tree, and
    the inventory, source tree and record syncd reads."""

    tmp: Path
    mirrors: dict[str, tuple[str, str]]
    docroots: dict[str, Path]
    active: dict[str, bool]
    port: int

    @property
    def config(self) -> Path:
        return self.tmp / "syncd.toml"

    @property
    def state(self) -> Path:
        return self.tmp / "state.sqlite"

    def write_inventory(self) -> None:
        (self.tmp / "inventory.toml").write_text(
            lab_inventory(
                [
                    {"name": n, "host": a, "country": c, "http": f"http://{a}:{self.port}"}
                    | {"active": self.active[n]}
                    for n, (a, c) in self.mirrors.items()
                ]
            )
        )

    def release(self, daily: int, *, fail: tuple[str, ...] = ()) -> None:
        """Release `daily` lands on the source and is pushed: every active mirror but `fail`
        gets it; the publish records each outcome."""
        write_release_tree(self.tmp / "source", daily, cdiffs=5, signs=False)
        versions = {"daily": daily, "main": 62, "bytecode": 335}
        names = [n for n in self.mirrors if self.active[n]]
        for name in names:
            if name not in fail:
                push_tree(self.docroots[name], daily)
        record_publish(self.state, {n: n not in fail for n in names}, versions)

    def syncd(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "syncd", *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )


@contextmanager
def mirrors_served(
    tmp: Path, mirrors: dict[str, tuple[str, str]], port: int, first: int
) -> Iterator[Fleet]:
    """Each mirror a real nginx on its own loopback address, serving release `first`; the
    fleet with every mirror active and the inventory written."""
    servers: list[Nginx] = []
    docroots = {}
    try:
        for name, (address, _) in mirrors.items():
            docroot = tmp / "mirrors" / name
            docroot.mkdir(parents=True)
            push_tree(docroot, first)
            nginx = Nginx(tmp / "nginx" / name, docroot, port=port)
            nginx.host = address
            servers.append(nginx.start())
            docroots[name] = docroot
        fleet = Fleet(tmp, mirrors, docroots, dict.fromkeys(mirrors, True), port)
        fleet.write_inventory()
        yield fleet
    finally:
        for s in servers:
            s.stop()
