"""While syncs run in a loop, an HTTP client never receives a partial or corrupt CVD."""

from __future__ import annotations

import hashlib
import http.client
import threading
from collections.abc import Callable
from pathlib import Path

from devtools.harness.cvd import HEADER_SIZE, write_release
from devtools.harness.nginx import Nginx
from tests.client.conftest import Mirror, fresh_mtime


def _check(body: bytes) -> str | None:
    if len(body) < HEADER_SIZE:
        return f"short body ({len(body)} bytes)"
    fields = body[:HEADER_SIZE].decode("ascii", "replace").rstrip(" ").split(":")
    if hashlib.md5(body[HEADER_SIZE:]).hexdigest() != fields[5]:
        return f"MD5 mismatch in version {fields[2]}"
    return None


def test_http_reader_never_sees_a_partial_cvd(
    mirror: Mirror, source_tree: Path, nginx_factory: Callable[..., Nginx]
) -> None:
    assert mirror.run().rc == 0
    web = nginx_factory(mirror.to)
    stop = threading.Event()
    seen: dict[str, int] = {"ok": 0, "missing": 0}
    bad: list[str] = []

    def reader() -> None:
        conn = http.client.HTTPConnection(web.host, web.port, timeout=10)
        while not stop.is_set():
            conn.request("GET", "/daily.cvd", headers={"Host": "db.test.clamav.net"})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                seen["missing"] += 1
                continue
            problem = _check(body)
            if problem:
                bad.append(problem)
            else:
                seen["ok"] += 1
        conn.close()

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(1, 16):
            fresh_mtime(*write_release(source_tree, 28033 + i, payload_size=400_000).values())
            rep = mirror.run().report
            assert rep["status"] == "ok", rep
            assert rep["databases"]["daily"]["version"] == 28033 + i
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    assert not bad, bad[:5]
    assert seen["missing"] == 0
    assert seen["ok"] > 30
    # dot names (our staging tree) are not served
    conn = http.client.HTTPConnection(web.host, web.port, timeout=10)
    conn.request(
        "GET", "/.clam-clientsync/staging/daily.cvd", headers={"Host": "db.test.clamav.net"}
    )
    assert conn.getresponse().status in (403, 404)
    conn.close()


def test_plain_file_reader_never_sees_a_partial_cvd(mirror: Mirror, source_tree: Path) -> None:
    """The same without a web server: open() by name, as any server does."""
    assert mirror.run().rc == 0
    stop = threading.Event()
    bad: list[str] = []
    reads = [0]

    def reader() -> None:
        while not stop.is_set():
            try:
                body = (mirror.to / "daily.cvd").read_bytes()
            except FileNotFoundError:
                bad.append("missing")
                continue
            problem = _check(body)
            if problem:
                bad.append(problem)
            reads[0] += 1

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        for i in range(1, 11):
            fresh_mtime(*write_release(source_tree, 29000 + i, payload_size=400_000).values())
            assert mirror.run().report["status"] == "ok"
    finally:
        stop.set()
        t.join(15)
    assert not bad, bad[:5]
    assert reads[0] > 10
