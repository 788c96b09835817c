"""A tiny hostile HTTP server on loopback: answers each connection with bytes the test chose.

Each accepted connection reads the request head, then sends the next queued answer verbatim
(anything: a broken status line, lying Content-Length, a redirect, an endless body) and closes.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import deque
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
