"""A slow HTTP server on loopback: each connection gets a valid status line at once, then the
rest of a valid answer one byte every `interval_s` seconds (a mirror on a dying link, or one
that holds its clients on purpose). Every connection thread ends when the server stops."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

BODY = b"1700000000\n"  # a /timestamp body; never compared to now (noqa: date)


class SlowHttp:
    def __init__(self, interval_s: float = 4.0, body: bytes = BODY) -> None:
        self.interval_s = interval_s
        self.body = body
        self.connections = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set() and len(self._threads) < 64:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            t = threading.Thread(target=self._trickle, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

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

    def __enter__(self) -> SlowHttp:
        self._accept.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._sock.close()
        self._accept.join(5)
        for thread in self._threads:
            thread.join(5)
