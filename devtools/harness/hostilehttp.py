"""A tiny hostile HTTP server on loopback: answers each connection with bytes the test chose.

Each accepted connection reads the request head, then sends the next queued answer verbatim
(anything: a broken status line, lying Content-Length, a redirect, an endless body) and closes.
`RoutedHttp` answers by path instead, for a whole hostile mirror (a sound timestamp, an attack
on one file); `gzip_bomb`, `chunked_flood` and `endless` build the answers of the HTTP attacks.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Self


class HostileHttp:
    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.answers: deque[bytes] = deque()
        self.served = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def queue(self, *answers: bytes) -> None:
        self.answers.clear()
        self.answers.extend(answers)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self.handle(conn):
                conn.close()
                return

    def handle(self, conn: socket.socket) -> bool:
        """Answer one connection (here: the next queued answer, then close); False stops the
        server."""
        with conn, contextlib.suppress(OSError):
            conn.settimeout(2)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                head += chunk
            answer = self.answers.popleft() if self.answers else b""
            self.served += 1
            conn.sendall(answer)
            conn.shutdown(socket.SHUT_WR)
        return True

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(5)


Answer = bytes | Callable[[socket.socket], None]


class RoutedHttp(HostileHttp):
    """A hostile mirror that answers by path: `routes` maps a request path (``/daily.cvd``),
    or a path and the Range asked for (``/daily.cvd bytes=0-511``, looked up first), to the
    bytes to send, or to a function that writes the answer itself (an endless body); a path it
    does not know gets a 404. Each connection is answered in a thread of its own,
    so one endless answer does not hold the others."""

    def __init__(self, routes: Mapping[str, Answer]) -> None:
        super().__init__()
        self.routes = dict(routes)
        self.paths: list[str] = []
        self._threads: list[threading.Thread] = []

    def handle(self, conn: socket.socket) -> bool:
        t = threading.Thread(target=self._answer, args=(conn,), daemon=True)
        self._threads.append(t)
        t.start()
        return True

    def _answer(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(5)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            parts = head.split(b" ", 2)
            path = parts[1].decode("latin-1") if len(parts) > 1 else ""
            self.paths.append(path)
            self.served += 1
            ranges = [
                line.split(b":", 1)[1].strip().decode("latin-1")
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"range:")
            ]
            answer = self.routes.get(f"{path} {ranges[0]}" if ranges else path)
            answer = answer or self.routes.get(path, NOT_FOUND)
            conn.settimeout(60)  # a client slow to take a flood (reading it whole) still gets it
            if callable(answer):
                answer(conn)
            else:
                conn.sendall(answer)
            conn.shutdown(socket.SHUT_WR)

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        super().__exit__(t, e, tb)
        for thread in self._threads:
            thread.join(5)


NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def answer(body: bytes, status: bytes = b"200 OK", extra: bytes = b"") -> bytes:
    """An answer with `body`, its Content-Length, and the `extra` header lines (CRLF each)."""
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\nContent-Length: %d\r\n" % len(body)
        + extra
        + b"Connection: close\r\n\r\n"
        + body
    )


def gzip_bomb(prefix: bytes, inflated: int, layers: int = 3) -> bytes:
    """`prefix` followed by `inflated` zero bytes, gzip'd `layers` times: a few hundred bytes
    on the wire for a gigabyte once decoded."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [c.compress(prefix)]
    block = bytes(1 << 20)
    for _ in range(inflated >> 20):
        parts.append(c.compress(block))
    parts.append(c.flush())
    data = b"".join(parts)
    for _ in range(layers - 1):
        data = gzip.compress(data, mtime=0)
    return data


def chunked_flood(first: bytes, total: int, claimed: int = 512) -> Callable[[socket.socket], None]:
    """An answer that claims ``Content-Length: claimed`` and sends `first` then zeros up to
    `total` bytes, framed by ``Transfer-Encoding: chunked`` (which h11 obeys)."""

    def send(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 206 Partial Content\r\nContent-Length: %d\r\n" % claimed
            + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            + b"%x\r\n" % len(first)
            + first
            + b"\r\n"
        )
        block = b"%x\r\n" % (1 << 20) + bytes(1 << 20) + b"\r\n"
        for _ in range(max(0, total - len(first)) >> 20):
            conn.sendall(block)
        conn.sendall(b"0\r\n\r\n")

    return send


def endless(first: bytes, filler: bytes = b" ") -> Callable[[socket.socket], None]:
    """A 200 answer with no length: `first`, then `filler` until the client goes away."""

    def send(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + first)
        block = filler * (65536 // len(filler))
        while True:
            conn.sendall(block)

    return send
