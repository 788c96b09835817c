"""A slow HTTP server on loopback: each connection gets a valid status line at once, then the
rest of a valid answer one byte every `interval_s` seconds (a mirror on a dying link, or one
that holds its clients on purpose). The listener is HostileHttp's; each connection trickles in
a thread of its own, and every one ends when the server stops."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

from tests.fuzz.hostilehttp import HostileHttp

BODY = b"1700000000\n"  # a /timestamp body; never compared to now (noqa: date)


class SlowHttp(HostileHttp):
    def __init__(self, interval_s: float = 4.0, body: bytes = BODY) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.body = body
        self._threads: list[threading.Thread] = []

    @property
    def connections(self) -> int:
        return self.served

    def handle(self, conn: socket.socket) -> bool:
        if len(self._threads) >= 64:
            return False
        self.served += 1
        t = threading.Thread(target=self._trickle, args=(conn,), daemon=True)
        self._threads.append(t)
        t.start()
        return True

    def _trickle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(2)
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            rest = b"Content-Length: %d\r\n\r\n" % len(self.body) + self.body
            for i in range(len(rest)):
                if self._stop.wait(self.interval_s):
                    return
                conn.sendall(rest[i : i + 1])

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        super().__exit__(t, e, tb)
        for thread in self._threads:
            thread.join(5)
