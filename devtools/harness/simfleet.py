"""A simulated fleet of mirrors: asyncssh servers on loopback, in their own processes.

Each mirror is a distinct endpoint (its own 127.x.y.z address; one port per fleet, free when
made), with its own ed25519 host key pinned in a generated inventory, and a behaviour drawn
from a seeded profile:
round-trip latency (applied per exchange by a delaying pump in front of the SSH server), the
time its "rsync" takes, and a fault. The reply is a valid ``clam-clientsync`` report.

    python -m devtools.harness.simfleet make --n 100 --seed 1 --out DIR  # keys, profiles, inventory
    python -m devtools.harness.simfleet serve --dir DIR --shard 0/2       # one serving process

Faults: ``refuse`` (nothing listens), ``hang_connect`` (accepts, never speaks), ``hang_after_auth``
(session never answers), ``reject_key``, ``fail_first`` (first sync fails with exit 75),
``queued`` (answers queued; ``status`` shows the release once its rsync time has passed),
``garbage`` (prints non-JSON).

Real clients (``exec.json`` in the fleet's directory, see ``write_exec``): the mirrors it lists
run the real ``clam-clientsync`` instead of a simulated reply, as sshd's forced command would:
each pusher key it names maps to the source given as the command's last argument, the pushed
command arrives in ``SSH_ORIGINAL_COMMAND``, the client runs as the mirror account (when we are
root, at niceness ``CLIENT_NICE``) and its stdout and exit code are the session's. This is the
client's forced-command path without OpenSSH, for fleets too large for one sshd per mirror.
Each server process logs the times its event loop woke up late by more than
``LAG_LOGGED_S`` to ``lag-<shard>.log`` (a late loop answers handshakes late).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import random
import resource
import shlex
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncssh

from devtools.harness.binaries import require
from devtools.harness.documents import LAB_INVENTORY, inventory_block, report_doc

FAULTS = (
    "refuse",
    "hang_connect",
    "hang_after_auth",
    "reject_key",
    "fail_first",
    "queued",
    "garbage",
)
# what syncd (or any contender) should end with, per fault
EXPECTED = {
    None: "ok",
    "refuse": "unreachable",
    "hang_connect": "timeout",
    "hang_after_auth": "timeout",
    "reject_key": "auth_failed",
    "fail_first": "ok",
    "queued": "ok",
    "garbage": "failed",
}
RELEASE = {"daily": 28034, "main": 62, "bytecode": 335}
RELEASE_BEFORE = {"daily": 28033, "main": 62, "bytecode": 335}  # what a queued mirror serves


def expect_args() -> list[str]:
    """The ``syncd publish`` options that announce the simulated release."""
    return [arg for db, v in RELEASE.items() for arg in ("--expect", f"{db}={v}")]


@dataclass(frozen=True)
class Mirror:
    name: str
    host: str
    port: int
    rtt_ms: float
    rsync_s: float
    fault: str | None


def address(i: int) -> str:
    """The i-th mirror's loopback address: 127.1.0.1, 127.1.0.2, ... (last octet 1-254)."""
    return f"127.{1 + i // (254 * 256)}.{(i // 254) % 256}.{i % 254 + 1}"


def draw(
    n: int,
    seed: int,
    *,
    fault_rate: float,
    rtt_ms: tuple[float, float],
    rsync_s: tuple[float, float],
    port: int = 22,
) -> list[Mirror]:
    """Return `n` mirrors with seeded latency, rsync time and fault."""
    rng = random.Random(seed)
    mirrors = []
    for i in range(n):
        fault = rng.choice(FAULTS) if rng.random() < fault_rate else None
        mirrors.append(
            Mirror(
                f"sim{i:04d}.mirror.test",
                address(i),
                port,
                round(rng.uniform(*rtt_ms), 1),
                round(rng.lognormvariate(0, 0.5) * (rsync_s[0] + rsync_s[1]) / 2, 3)
                if rsync_s[1] > 0
                else 0.0,
                fault,
            )
        )
    return mirrors


def make(
    out: Path,
    n: int,
    seed: int,
    fault_rate: float,
    rtt_ms: tuple[float, float],
    rsync_s: tuple[float, float],
    user: str = "clamavdb",
) -> Path:
    """Write keys, profiles and the inventory for a fleet into `out`; return the inventory."""
    out.mkdir(parents=True, exist_ok=True)
    client = asyncssh.generate_private_key("ssh-ed25519", comment="bench-pusher")
    client.write_private_key(out / "pusher_ed25519")
    (out / "pusher_ed25519").chmod(0o600)
    client.write_public_key(out / "pusher_ed25519.pub")
    mirrors = draw(
        n, seed, fault_rate=fault_rate, rtt_ms=rtt_ms, rsync_s=rsync_s, port=fleet_port()
    )
    keys_dir = out / "hostkeys"
    keys_dir.mkdir(exist_ok=True)
    blocks = []
    for m in mirrors:
        key = asyncssh.generate_private_key("ssh-ed25519")
        key.write_private_key(keys_dir / m.name)
        public = key.export_public_key("openssh").decode().strip()
        blocks.append(
            inventory_block(
                {
                    "name": m.name,
                    "host": m.host,
                    "port": m.port,
                    "user": user,
                    "country": "PL",
                    "host_keys": [public],
                }
            )
        )
    (out / "profiles.json").write_text(json.dumps([asdict(m) for m in mirrors], indent=1))
    inventory = out / "inventory.toml"
    inventory.write_text(LAB_INVENTORY + "\n".join(blocks))
    return inventory


def fleet_port() -> int:
    """A port free on the fleet's first address now; every mirror of the fleet listens on it."""
    with socket.socket() as s:
        s.bind((address(0), 0))
        return int(s.getsockname()[1])


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def report(
    status: str,
    verb: str,
    expect: dict[str, int],
    error: dict[str, str] | None = None,
    duration: float = 0.0,
) -> str:
    """A report in the clam-clientsync contract (report_version 1)."""
    now = _now()  # the simulated release is built as it is published
    ok = status == "ok"
    return (
        json.dumps(
            report_doc(
                status,
                {db: expect.get(db, v) for db, v in RELEASE.items()}
                if status in ("ok", "queued")
                else {},
                verb=verb,
                at=now,
                build_time=now,
                source_used="rsync1.clamav.net" if ok else None,
                attempts=[
                    {
                        "source": "rsync1.clamav.net",
                        "exit_code": 0 if ok else 10,
                        "duration_s": duration,
                        "error": None if ok else "simulated",
                    }
                ],
                duration_s=duration,
                files_transferred=1,
                bytes_transferred=4096,
                error=error,
                client_version="sim",
                run_id=None,
                warnings=[],
            )
        )
        + "\n"
    )


class _Mirror:
    def __init__(self, m: Mirror, pusher: asyncssh.SSHKey, events: Any) -> None:
        self.m, self.pusher, self.events = m, pusher, events
        self.queued_run = ""
        self.syncs: dict[str, int] = {}  # per run id: each run meets the fault afresh
        self.queued_at: float | None = None

    def server_factory(self) -> asyncssh.SSHServer:
        mirror = self

        class Server(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                return True

            def public_key_auth_supported(self) -> bool:
                return True

            def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
                return mirror.m.fault != "reject_key" and (
                    key.public_data == mirror.pusher.public_data
                )

        return Server()

    async def session(self, process: asyncssh.SSHServerProcess[str]) -> None:
        words = shlex.split(process.command or "sync")
        verb = words[0] if words else "sync"
        expect = {
            w.split("=", 1)[0][7:]: int(w.split("=", 1)[1])
            for w in words[1:]
            if w.startswith("expect-")
        }
        fault = self.m.fault
        if fault == "hang_after_auth":
            await asyncio.sleep(3600)
        if verb == "status":
            done = self.queued_at is not None and time.monotonic() >= self.queued_at
            # a queued mirror still serves the previous release until its sync has run
            process.stdout.write(report("ok", "status", RELEASE if done else RELEASE_BEFORE))
            process.exit(0)
            if done and self.queued_run:
                self.events.write(f"{time.time():.6f} {self.queued_run} {self.m.name}\n")
                self.queued_run = ""
            return
        run_id = next((w[7:] for w in words if w.startswith("run-id=")), "")
        self.syncs[run_id] = attempt = self.syncs.get(run_id, 0) + 1
        if fault == "queued" and attempt == 1:
            self.queued_at = time.monotonic() + self.m.rsync_s
            self.queued_run = run_id
            process.stdout.write(report("queued", "sync", RELEASE_BEFORE))
            process.exit(0)
            return
        await asyncio.sleep(self.m.rsync_s)
        if fault == "garbage":
            process.stdout.write("<html>500 Internal Server Error</html>\n")
            process.exit(0)
        elif fault == "fail_first" and attempt == 1:
            process.stdout.write(
                report(
                    "failed", "sync", expect, {"kind": "source_unavailable", "message": "simulated"}
                )
            )
            process.exit(75)
        else:
            process.stdout.write(report("ok", "sync", expect, duration=self.m.rsync_s))
            process.exit(0)
            self.events.write(f"{time.time():.6f} {run_id} {self.m.name}\n")


def write_exec(
    directory: Path,
    argv: dict[str, list[str]],
    keys: dict[str, str],
    *,
    uid: int | None = None,
    gid: int | None = None,
    homes: dict[str, str] | None = None,
) -> Path:
    """Make the fleet in `directory` run real clients: `argv` maps a mirror's name to its forced
    command (the source is appended), `keys` a source's name to the public key (OpenSSH line)
    that selects it; the client runs as `uid`/`gid` (default: ours) with HOME from `homes`."""
    path = directory / "exec.json"
    doc = {"argv": argv, "keys": keys, "uid": uid, "gid": gid, "homes": homes or {}}
    path.write_text(json.dumps(doc, indent=1))
    return path


# starts the real clients off the event loop (a few at a time is enough)
SPAWNER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="spawn")
# The real clients run at this niceness. Each mirror has a machine of its own; here hundreds
# of clients share two cores with the fleet's SSH servers, syncd and the throttling proxies,
# and at the same priority they starved those for seconds at a time (the servers' loops woke
# up late by up to 12 s: handshakes unanswered, finished clients' output unread). Niced, they
# still get every idle cycle, and the rest of the simulation answers in time.
CLIENT_NICE = 19


class _ExecMirror:
    """A mirror whose session runs the real client (see ``write_exec``)."""

    def __init__(self, m: Mirror, spec: dict[str, Any], events: Any) -> None:
        self.m, self.events = m, events
        self.argv: list[str] = spec["argv"][m.name]
        self.home: str = spec["homes"].get(m.name, "/")
        self.uid: int | None = spec["uid"]
        self.gid: int | None = spec["gid"]
        self.keys = {
            asyncssh.import_public_key(line).public_data: source
            for source, line in spec["keys"].items()
        }
        self.sources: dict[object, str] = {}  # connection -> the source its key selects

    def server_factory(self) -> asyncssh.SSHServer:
        mirror = self

        class Server(asyncssh.SSHServer):
            conn: object = None

            def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
                self.conn = conn

            def connection_lost(self, exc: Exception | None) -> None:
                mirror.sources.pop(self.conn, None)

            def begin_auth(self, username: str) -> bool:
                return True

            def public_key_auth_supported(self) -> bool:
                return True

            def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
                source = mirror.keys.get(key.public_data)
                if source is None:
                    return False
                mirror.sources[self.conn] = source
                return True

        return Server()

    async def session(self, process: asyncssh.SSHServerProcess[str]) -> None:
        source = self.sources.get(process.channel.get_connection(), "")
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": self.home,
            "LANG": "C.UTF-8",
            "SSH_ORIGINAL_COMMAND": process.command or "",
        }
        as_user: dict[str, Any] = {}
        if os.geteuid() == 0 and self.uid is not None:
            as_user = {"user": self.uid, "group": self.gid, "extra_groups": []}
        # Not asyncio's create_subprocess_exec: it runs Popen on this loop, and Popen returns
        # only once the child has exec'd (with user= it forks, no vfork). Sessions that log in
        # together start their clients in one loop pass, so on a loaded machine hundreds of
        # them stalled this loop for tens of seconds: no handshake answered meanwhile (a
        # connect timeout at syncd), no finished client's output read. A thread starts it.
        loop = asyncio.get_running_loop()
        spawn = functools.partial(
            subprocess.Popen,
            [require("nice"), "-n", str(CLIENT_NICE), *self.argv, source],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=self.home,
            **as_user,
        )
        proc = await loop.run_in_executor(SPAWNER, spawn)
        reader = asyncio.StreamReader()
        assert proc.stdout is not None
        pipe, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), proc.stdout
        )
        try:
            out = await reader.read()  # to EOF: the client has ended (it keeps its own deadline)
        finally:
            pipe.close()
        returncode = await loop.run_in_executor(None, proc.wait)
        process.stdout.write(out.decode(errors="replace"))
        process.exit(returncode or 0)
        if returncode == 0:
            self.events.write(f"{time.time():.6f} exec {self.m.name}\n")


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Forward with a one-way `delay` per chunk, keeping order and overlapping chunks."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            writer.write(data)
            await writer.drain()
        writer.close()

    task = asyncio.ensure_future(deliver())
    try:
        while data := await reader.read(65536):
            queue.put_nowait((time.monotonic() + delay, data))
    except OSError:
        pass
    queue.put_nowait((0.0, b""))
    await task


async def _serve_one(
    m: Mirror,
    pusher: asyncssh.SSHKey,
    key_path: Path,
    holders: list[Any],
    events: Any,
    spec: dict[str, Any] | None = None,
) -> None:
    if m.fault == "refuse":
        return
    if m.fault == "hang_connect":

        async def hold(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            holders.append(w)

        holders.append(await asyncio.start_server(hold, m.host, m.port))
        return
    mirror: _Mirror | _ExecMirror = (
        _ExecMirror(m, spec, events)
        if spec is not None and m.name in spec["argv"]
        else _Mirror(m, pusher, events)
    )
    options = asyncssh.SSHServerConnectionOptions(
        server_host_keys=[asyncssh.read_private_key(key_path)],
        server_factory=mirror.server_factory,
        process_factory=mirror.session,
        encoding="utf-8",
        keepalive_interval=0,
    )
    if m.rtt_ms <= 0:
        holders.append(await asyncssh.listen(m.host, m.port, options=options))
        return
    delay = m.rtt_ms / 2000.0

    async def accept(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        inner, outer = socket.socketpair()
        conn = asyncio.ensure_future(asyncssh.run_server(inner, options=options))
        o_reader, o_writer = await asyncio.open_connection(sock=outer)
        try:
            await asyncio.gather(_pump(r, o_writer, delay), _pump(o_reader, w, delay))
        finally:
            conn.cancel()

    holders.append(await asyncio.start_server(accept, m.host, m.port, backlog=512))


LAG_TICK_S = 0.1
LAG_LOGGED_S = 0.5


async def _watch_lag(log: Any) -> None:
    """Log each time this process's event loop woke up late by more than ``LAG_LOGGED_S``
    (``<unix time> lag <seconds>``): a loop that busy cannot answer a handshake in time."""
    while True:
        before = time.monotonic()
        await asyncio.sleep(LAG_TICK_S)
        late = time.monotonic() - before - LAG_TICK_S
        if late > LAG_LOGGED_S:
            log.write(f"{time.time():.3f} lag {late:.3f}\n")


async def serve(directory: Path, shard: int, shards: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    mirrors = [Mirror(**d) for d in json.loads((directory / "profiles.json").read_text())]
    pusher = asyncssh.read_public_key(directory / "pusher_ed25519.pub")
    holders: list[Any] = []
    mine = [m for i, m in enumerate(mirrors) if i % shards == shard]
    # one line per mirror that ends a run ok: "<unix time> <run id> <name>" (time to 50/95/99 %)
    events = (directory / f"events-{shard}.log").open("a", buffering=1)
    exec_path = directory / "exec.json"
    spec = json.loads(exec_path.read_text()) if exec_path.exists() else None
    for m in mine:
        await _serve_one(m, pusher, directory / "hostkeys" / m.name, holders, events, spec)
    lag_log = (directory / f"lag-{shard}.log").open("a", buffering=1)
    holders.append(asyncio.ensure_future(_watch_lag(lag_log)))
    print(f"ready {len(mine)}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m devtools.harness.simfleet")
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make")
    mk.add_argument("--n", type=int, default=100)
    mk.add_argument("--seed", type=int, default=1)
    mk.add_argument("--fault-rate", type=float, default=0.0)
    mk.add_argument("--rtt-ms", type=float, nargs=2, default=(0.0, 0.0))
    mk.add_argument("--rsync-s", type=float, nargs=2, default=(0.0, 0.0))
    mk.add_argument("--out", type=Path, required=True)
    sv = sub.add_parser("serve")
    sv.add_argument("--dir", type=Path, required=True)
    sv.add_argument("--shard", default="0/1")
    args = ap.parse_args()
    if args.cmd == "make":
        print(
            make(
                args.out,
                args.n,
                args.seed,
                args.fault_rate,
                tuple(args.rtt_ms),
                tuple(args.rsync_s),
            )
        )
    else:
        shard, shards = (int(x) for x in args.shard.split("/"))
        try:
            asyncio.run(serve(args.dir, shard, shards))
        except KeyboardInterrupt:
            sys.exit(0)


class Fleet:
    """Start the fleet's serving processes (one shard each) and stop them on exit."""

    def __init__(self, directory: Path, processes: int = 2) -> None:
        self.directory, self.processes = directory, processes
        self._procs: list[Any] = []

    def __enter__(self) -> Fleet:
        import subprocess

        for shard in range(self.processes):
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "devtools.harness.simfleet",
                    "serve",
                    "--dir",
                    str(self.directory),
                    "--shard",
                    f"{shard}/{self.processes}",
                ],
                stdout=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
                cwd=Path(__file__).resolve().parents[2],
            )
            self._procs.append(proc)
        for proc in self._procs:
            line = proc.stdout.readline() if proc.stdout else ""
            if not line.startswith("ready"):
                self.__exit__(None, None, None)
                raise RuntimeError(f"fleet shard failed to start: {line!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self._procs:
            proc.terminate()
        for proc in self._procs:
            if proc.stdout:
                proc.stdout.close()
            try:
                proc.wait(10)
            except Exception:
                proc.kill()
                proc.wait(10)
        self._procs.clear()


if __name__ == "__main__":
    main()
