"""A light static file server on loopback that ignores every conditional request.

It serves a directory as a careless mirror's server would: it never answers 304 and never
looks at ``If-Range``, ``If-None-Match`` or ``If-Modified-Since``. With `ranges` it answers a
single ``Range: bytes=A-B`` (or ``bytes=-N``) with 206 from the file as it is now, whatever
validator was sent; without, 200 and the whole file. It sends an nginx-style ETag (hex mtime -
hex size) and a Last-Modified date only when asked to (`validators`). Used where nginx cannot
be made to ignore If-Range, and as the light server of the monitor benchmark.
"""

from __future__ import annotations

import re
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Self

_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")


class PlainHttp:
    def __init__(
        self,
        docroot: Path,
        *,
        ranges: bool = True,
        validators: bool = True,
        host: str = "127.0.0.1",
    ) -> None:
        self.docroot, self.ranges, self.validators = docroot, ranges, validators
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.requests += 1
                outer.answer(self)

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.host, self.port = host, self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def answer(self, h: BaseHTTPRequestHandler) -> None:
        name = h.path.split("?", 1)[0].lstrip("/")
        path = self.docroot / name
        if "/" in name or name.startswith(".") or not path.is_file():
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        data, st = path.read_bytes(), path.stat()
        status, body, span = 200, data, None
        m = _RANGE.fullmatch((h.headers.get("Range") or "").strip())
        if self.ranges and m and (m[1] or m[2]):
            first, last = _span(m[1], m[2], len(data))
            if first >= len(data):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            status, body, span = 206, data[first : last + 1], (first, last)
        h.send_response(status)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(len(body)))
        if span is not None:
            h.send_header("Content-Range", f"bytes {span[0]}-{span[1]}/{len(data)}")
        if self.validators:
            h.send_header("ETag", f'"{int(st.st_mtime):x}-{len(data):x}"')
            h.send_header("Last-Modified", formatdate(st.st_mtime, usegmt=True))
        h.end_headers()
        h.wfile.write(body)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _span(first: str, last: str, size: int) -> tuple[int, int]:
    if not first:  # bytes=-N: the last N bytes
        return max(0, size - int(last)), size - 1
    return int(first), min(size - 1, int(last)) if last else size - 1
