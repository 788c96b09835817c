"""A TCP proxy on loopback that injects network faults between a client and a real server.

Put it between syncd and an sshd, or between the mirror client and an rsync daemon, and set
its mode at any moment (it applies to new data on open connections too):

- ``pass``: forward as is; ``delay_s`` adds latency to every chunk in both directions,
  ``rate_bps`` throttles each direction of each connection, ``aggregate_bps`` caps the bytes
  from the server summed over all connections (a source's egress: one token bucket, served in
  the order the chunks arrive). ``add_listener(host, rate_bps=...)`` accepts on one more
  loopback address (same port), each of its connections capped at its own rate from the
  server (a mirror's own downlink), all of them under the one ``aggregate_bps``.
- ``stall``: keep connections open and forward nothing (a hung peer).
- ``drop``: forward ``drop_after`` bytes from the server, then reset the connection.
- ``refuse``: new connections are reset at once, without a byte (for a real ECONNREFUSED,
  point the client at ``closed_port()``, where nothing listens).

Runs its own asyncio loop in a daemon thread; ``stop()`` closes every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, fields, replace
from types import TracebackType

from devtools.harness.ports import free_port

MODES = ("pass", "stall", "drop", "refuse")


@dataclass
class ProxyStats:
    """What the proxy did, counted by the proxy itself: connections accepted and refused, bytes
    forwarded, connections dropped, chunks held back by a stall, delayed, throttled; and the
    bytes the server sent on the last connection that ended by itself (the size of a session)."""

    accepted: int = 0
    refused: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    dropped: int = 0
    stalled: int = 0
    delayed: int = 0
    throttled: int = 0
    last_session_down: int = 0

    def since(self, mark: ProxyStats) -> ProxyStats:
        """Return the counts since `mark` (an earlier ``copy()``); the last session as is."""
        counts = {
            f.name: getattr(self, f.name) - getattr(mark, f.name)
            for f in fields(self)
            if f.name != "last_session_down"
        }
        return ProxyStats(**counts, last_session_down=self.last_session_down)

    def copy(self) -> ProxyStats:
        return replace(self)


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, *, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.mode = "pass"
        self.delay_s = 0.0
        self.rate_bps: float | None = None
        self.aggregate_bps: float | None = None
        self.drop_after = 0
        self._bucket_free_at = 0.0  # when the aggregate bucket has sent what it was given
        self._listeners: list[asyncio.base_events.Server] = []
        self.stats = ProxyStats()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def set(self, mode: str, **knobs: float) -> None:
        """Switch to `mode` (one of MODES), optionally setting delay_s, rate_bps, aggregate_bps,
        drop_after."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        for name, value in knobs.items():
            if name not in {"delay_s", "rate_bps", "aggregate_bps", "drop_after"}:
                raise ValueError(f"unknown knob {name}")
            setattr(self, name, value)
        self.mode = mode

    async def _aggregate(self, size: int) -> None:
        """Wait for `size` bytes' turn in the shared egress bucket (virtual finish time)."""
        rate = self.aggregate_bps
        if not rate:
            return
        now = self._loop.time()
        self._bucket_free_at = max(now, self._bucket_free_at) + size / rate
        await asyncio.sleep(self._bucket_free_at - now)

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        down: bool,
        down_bps: float | None = None,
    ) -> None:
        sent = 0
        try:
            while True:
                data = await reader.read(16384)
                if not data:
                    break
                if self.mode == "stall":
                    self.stats.stalled += 1
                while self.mode == "stall":  # noqa: ASYNC110 - mode is set from another thread
                    await asyncio.sleep(0.05)
                if self.delay_s:
                    self.stats.delayed += 1
                    await asyncio.sleep(self.delay_s)
                if self.rate_bps:
                    self.stats.throttled += 1
                    await asyncio.sleep(len(data) / self.rate_bps)
                if down and (down_bps or self.aggregate_bps):
                    self.stats.throttled += 1
                    started = self._loop.time()
                    await self._aggregate(len(data))
                    if down_bps:  # the connection's own cap, overlapping the bucket's wait
                        own = len(data) / down_bps - (self._loop.time() - started)
                        if own > 0:
                            await asyncio.sleep(own)
                if down and self.mode == "drop" and sent + len(data) > self.drop_after:
                    writer.write(data[: max(0, int(self.drop_after) - sent)])
                    self.stats.dropped += 1
                    _reset(writer)
                    return
                writer.write(data)
                await writer.drain()
                sent += len(data)
                if down:
                    self.stats.bytes_down += len(data)
                else:
                    self.stats.bytes_up += len(data)
            if down:
                self.stats.last_session_down = sent
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            _reset(writer)

    async def _handle(
        self,
        c_reader: asyncio.StreamReader,
        c_writer: asyncio.StreamWriter,
        down_bps: float | None = None,
    ) -> None:
        if self.mode == "refuse":
            self.stats.refused += 1
            _reset(c_writer)
            return
        self.stats.accepted += 1
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            s_reader, s_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(c_writer)
            return
        self._writers.update((c_writer, s_writer))
        try:
            await asyncio.gather(
                self._pipe(c_reader, s_writer, down=False),
                self._pipe(s_reader, c_writer, down=True, down_bps=down_bps),
            )
        finally:
            if task is not None:
                self._tasks.discard(task)
            for w in (c_writer, s_writer):
                self._writers.discard(w)
                w.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)

    async def _listen(self, host: str, rate_bps: float | None) -> None:
        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await self._handle(r, w, rate_bps)

        self._listeners.append(await asyncio.start_server(handle, host, self.port, backlog=512))

    def add_listener(self, host: str, *, rate_bps: float | None = None) -> None:
        """Also accept on `host` (a loopback address) at this proxy's port, capping each of its
        connections at `rate_bps` from the server (None: only the aggregate cap). Call after
        ``start()``."""
        if not host.startswith("127."):
            raise ValueError("the proxy listens on loopback (127.0.0.0/8) only")
        asyncio.run_coroutine_threadsafe(self._listen(host, rate_bps), self._loop).result(10)

    def start(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _stop(self) -> None:
        for server in [self._server, *self._listeners]:
            if server is not None:
                server.close()
        for w in list(self._writers):
            _reset(w)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a crashed peer or a middlebox does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


def closed_port() -> int:
    """Return a loopback port where nothing listens (connecting to it is refused)."""
    return free_port()
