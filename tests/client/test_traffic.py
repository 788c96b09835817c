"""Traffic counted from a real access log: nginx serves the mirror's tree and logs (combined,
and the guide's combinedrealsize with nginx's ``$bytes_sent`` as Apache's ``%O``) while the
test fetches files over raw sockets, then the real client syncs (real rsync daemons) and
reports what was served since its last report: exactly what the test fetched, across a
logrotate-style rotation, never twice, and a log it cannot read never fails the sync."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from clientside import accesslog
from devtools.harness.nginx import Nginx
from tests.client.conftest import Mirror

UA = "ClamAV/1.4.6 (OS: linux-gnu, ARCH: x86_64, CPU: x86_64, UUID: 5a4e)"
OLD_UA = "ClamAV/0.103.12 (OS: linux-gnu, ARCH: x86_64, CPU: x86_64)"
REALSIZE = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $bytes_sent '
    '"$http_referer" "$http_user_agent"'
)


@dataclass(frozen=True)
class Fetched:
    path: str
    agent: str
    status: int
    head: int  # bytes of the status line and headers
    body: int

    @property
    def kind(self) -> str:
        return (
            "cvd" if self.path.endswith(".cvd") else "cdiff" if ".cdiff" in self.path else "other"
        )


def fetch(web: Nginx, path: str, agent: str = UA, extra: Sequence[str] = ()) -> Fetched:
    """GET `path` as freshclam would (HTTP/1.1, Host db.test.clamav.net), reading every byte."""
    lines = [f"GET {path} HTTP/1.1", "Host: db.test.clamav.net", f"User-Agent: {agent}"]
    request = "\r\n".join([*lines, *extra, "Connection: close", "", ""]).encode()
    with socket.create_connection((web.host, web.port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
            assert len(data) < 1 << 30
    head, _, body = data.partition(b"\r\n\r\n")
    return Fetched(path, agent, int(head.split(b" ", 2)[1]), len(head) + 4, len(body))


def logged(web: Nginx) -> int:
    """Lines nginx has written to its access log (and the rotated one)."""
    files = [web.access_log, rotated(web)]
    return sum(p.read_bytes().count(b"\n") for p in files if p.exists())


def rotated(web: Nginx) -> Path:
    return web.access_log.with_name(web.access_log.name + ".1")


def wait_logged(web: Nginx, lines: int) -> None:
    """nginx logs a request after its answer is sent: wait until it has written `lines`."""
    for _ in range(1000):
        if logged(web) >= lines:
            assert logged(web) == lines
            return
        time.sleep(0.01)
    raise AssertionError(f"nginx logged {logged(web)} lines, not {lines}")


def freshclam_round(web: Nginx) -> list[Fetched]:
    """What a freshclam 1.4 and a 0.103 fetch, and a monitor check (not counted)."""
    # nginx answers 304 to the exact Last-Modified (if_modified_since exact)
    since = formatdate((web.docroot / "bytecode.cvd").stat().st_mtime, usegmt=True)
    return [
        fetch(web, "/daily.cvd"),
        fetch(web, "/main.cvd", extra=["Range: bytes=0-511"]),
        fetch(web, "/bytecode.cvd", extra=[f"If-Modified-Since: {since}"]),
        fetch(web, "/daily-1.cdiff"),  # not served: 404
        fetch(web, "/timestamp", agent=OLD_UA),
        fetch(web, "/timestamp", agent="ClamAV-MirrorCheck"),
    ]


Size = Callable[[Fetched], int]


def body(f: Fetched) -> int:
    """What the combined format logs: the body's bytes ($body_bytes_sent)."""
    return f.body


def on_the_wire(f: Fetched) -> int:
    """What combinedrealsize logs: every byte sent (%O, nginx's $bytes_sent)."""
    return f.head + f.body


def expected(fetched: Sequence[Fetched], size: Size) -> dict[str, Any]:
    users = [f for f in fetched if f.agent != "ClamAV-MirrorCheck"]
    kinds = {k: {"requests": 0, "bytes": 0} for k in ("cvd", "cdiff", "sign", "other")}
    statuses = dict.fromkeys(("2xx", "304", "3xx", "4xx", "5xx", "other"), 0)
    clients: dict[str, int] = {}
    for f in users:
        kinds[f.kind]["requests"] += 1
        kinds[f.kind]["bytes"] += size(f)
        statuses["304" if f.status == 304 else f"{f.status // 100}xx"] += 1
        version = "1" if f.agent == UA else "0.103"
        clients[version] = clients.get(version, 0) + 1
    return {
        "lines": len(fetched),
        "requests": len(users),
        "bytes": sum(size(f) for f in users),
        "excluded": len(fetched) - len(users),
        "malformed": 0,
        "kinds": kinds,
        "statuses": statuses,
        "clients": dict(sorted(clients.items())),
        "complete": True,
    }


def synced_traffic(mirror: Mirror) -> dict[str, Any]:
    """Sync; return the report's traffic (without `since`)."""
    res = mirror.run()
    rep = res.report
    assert res.rc == 0 and rep["status"] == "ok", res.stderr
    traffic = dict(rep["traffic"])
    traffic.pop("since")
    return traffic


NOTHING = expected([], body)


@pytest.mark.parametrize(("log_format", "size"), [(None, body), (REALSIZE, on_the_wire)])
def test_the_report_counts_exactly_what_nginx_served_since_the_last(
    mirror: Mirror,
    nginx_factory: Callable[..., Nginx],
    log_format: str | None,
    size: Size,
) -> None:
    web = nginx_factory(mirror.to, log_format=log_format)
    mirror.write_config(ACCESS_LOG=str(web.access_log))
    first = mirror.run()
    assert first.rc == 0 and first.report["traffic"]["requests"] == 0, first.stderr
    assert first.report["traffic"]["since"] is None
    fetched = freshclam_round(web)
    assert [f.status for f in fetched] == [200, 206, 304, 404, 200, 200]
    assert fetched[0].body == (mirror.to / "daily.cvd").stat().st_size > 512
    wait_logged(web, 6)
    res = mirror.run()
    assert res.report["traffic"]["since"] == first.report["started_at"]
    traffic = dict(res.report["traffic"])
    traffic.pop("since")
    assert traffic == expected(fetched, size)
    assert synced_traffic(mirror) == NOTHING  # never counted twice


def test_a_rotation_between_syncs_loses_nothing_and_counts_nothing_twice(
    mirror: Mirror, nginx_factory: Callable[..., Nginx]
) -> None:
    web = nginx_factory(mirror.to)
    mirror.write_config(ACCESS_LOG=str(web.access_log))
    assert synced_traffic(mirror) == NOTHING
    before = freshclam_round(web)
    wait_logged(web, 6)
    # logrotate: rename, then postrotate's reopen (nginx makes a new file)
    web.access_log.rename(rotated(web))
    web.reopen_logs()
    after = freshclam_round(web)
    wait_logged(web, 12)
    assert synced_traffic(mirror) == expected(before + after, body)
    # rotated again (the old .1 shifted away), with lines the last sync already counted in it
    more = freshclam_round(web)
    wait_logged(web, 18)
    rotated(web).rename(rotated(web).with_suffix(".2"))
    web.access_log.rename(rotated(web))
    web.reopen_logs()
    last = [fetch(web, "/daily.cvd")]
    wait_logged(web, 13)
    assert synced_traffic(mirror) == expected(more + last, body)
    assert synced_traffic(mirror) == NOTHING


def test_a_rotated_file_that_is_gone_starts_over_with_a_warning(
    mirror: Mirror, nginx_factory: Callable[..., Nginx]
) -> None:
    web = nginx_factory(mirror.to)
    mirror.write_config(ACCESS_LOG=str(web.access_log))
    assert synced_traffic(mirror) == NOTHING
    freshclam_round(web)
    wait_logged(web, 6)
    web.access_log.rename(web.access_log.with_suffix(".log.1.gz"))  # compressed at once
    web.reopen_logs()
    after = [fetch(web, "/daily.cvd")]
    wait_logged(web, 1)
    res = mirror.run()
    assert res.rc == 0
    traffic = dict(res.report["traffic"])
    traffic.pop("since")
    assert traffic == expected(after, body)
    assert any("rotated" in w for w in res.report["warnings"])


def test_a_log_it_cannot_read_never_fails_the_sync(mirror: Mirror, tmp_path: Path) -> None:
    # missing; a directory; a device that never ends; a FIFO nobody writes to
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (tmp_path / "missing.log", tmp_path, Path("/dev/zero"), fifo):
        mirror.write_config(ACCESS_LOG=str(path))
        res = mirror.run()
        assert res.rc == 0 and res.report["status"] == "ok", res.stderr
        assert "traffic" not in res.report
        assert any(w.startswith(f"access log {path}") for w in res.report["warnings"])
    mirror.write_config(ACCESS_LOG="relative.log")  # not a path: a config warning
    res = mirror.run()
    assert res.rc == 0 and res.report["status"] == "ok", res.stderr


def test_more_than_a_sync_may_read_is_carried_to_the_next(tmp_path: Path) -> None:
    """The bytes budget: each read stops at a whole line; the rest is the next read's."""
    log = tmp_path / "access.log"
    state = tmp_path / "state"
    state.mkdir()
    when = "07/Dec/2026:10:00:00 +0000"  # log text only, never compared (noqa: date)
    line = f'192.0.2.1 - - [{when}] "GET /daily.cvd HTTP/1.1" 200 1000 "-" "{UA}"\n'.encode()
    log.write_bytes(line * 50)
    total, reads = 0, 0
    while reads < 20:
        traffic, warnings = accesslog.read_traffic(
            str(state), str(log), reported_at="t", max_bytes=len(line) * 7 + 3
        )
        assert traffic is not None
        total += traffic["requests"]
        reads += 1
        if traffic["complete"]:
            break
        assert any("the rest is counted by the next" in w for w in warnings)
    assert (total, reads) == (50, 8)
    traffic, _ = accesslog.read_traffic(str(state), str(log), reported_at="t")
    assert traffic is not None and traffic["requests"] == 0


def test_the_time_budget_carries_the_rest(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"x\n" * 10)
    ticks = iter([0.0, 100.0])  # the budget is spent at the first look

    traffic, warnings = accesslog.read_traffic(
        str(tmp_path), str(log), reported_at="t", clock=lambda: next(ticks, 100.0)
    )
    assert traffic is not None and traffic["lines"] == 0 and traffic["complete"] is False
    assert any("the rest is counted by the next" in w for w in warnings)
    traffic, _ = accesslog.read_traffic(str(tmp_path), str(log), reported_at="t")
    assert (
        traffic is not None
        and traffic["lines"] == 10
        and os.path.exists(tmp_path / accesslog.STATE_NAME)
    )


def test_doctor_checks_the_access_log(bare_mirror: Mirror, tmp_path: Path) -> None:
    inside = bare_mirror.to / "local_access.log"
    inside.write_text("")
    outside = tmp_path / "access.log"
    outside.write_text("")
    cases = [
        (inside, "FAIL  ACCESS_LOG", "is outside TO"),
        (tmp_path / "missing.log", "FAIL  ACCESS_LOG", "is a file this user can read"),
        (outside, "ok    ACCESS_LOG", "is a file this user can read"),
    ]
    for path, mark, what in cases:
        bare_mirror.write_config(ACCESS_LOG=str(path))
        res = bare_mirror.run(argv=["--doctor", "--config", str(bare_mirror.config)])
        assert f"{mark} {path} {what}" in res.stdout, res.stdout
    bare_mirror.write_config(ACCESS_LOG="logs/access.log")
    res = bare_mirror.run(argv=["--doctor", "--config", str(bare_mirror.config)])
    assert "FAIL  ACCESS_LOG must be an absolute path, got 'logs/access.log'" in res.stdout


def send_raw(web: Nginx, data: bytes) -> int:
    """Send `data` as it is; return the answer's status (0: none)."""
    with socket.create_connection((web.host, web.port), timeout=10) as s:
        s.sendall(data)
        answer = b""
        while len(answer) < 1 << 20 and (chunk := s.recv(65536)):
            answer += chunk
    parts = answer.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def test_hostile_requests_are_counted_as_nginx_logged_them(
    mirror: Mirror, nginx_factory: Callable[..., Nginx]
) -> None:
    """Quotes, backslashes, control bytes and a fake MirrorCheck field in the User-Agent, a
    binary request, an oversize URI: each is one request (nginx escapes what it logs); lines
    another writer appends (oversize, binary, a negative or huge size) are malformed or
    clamped, and nothing fails."""
    web = nginx_factory(mirror.to)
    mirror.write_config(ACCESS_LOG=str(web.access_log))
    assert synced_traffic(mirror) == NOTHING
    agents = [
        'ClamAV/1.4.6" 200 99999999 "-" "ClamAV-MirrorCheck',
        'x\\" "ClamAV-MirrorCheck',
        "ClamAV/1.4.6 \x1b[31m\x7f\xff",
    ]
    statuses = [
        send_raw(
            web,
            b"GET /daily.cvd HTTP/1.1\r\nHost: db.test.clamav.net\r\nUser-Agent: "
            + a.encode("latin-1")
            + b"\r\nConnection: close\r\n\r\n",
        )
        for a in agents
    ]
    statuses.append(send_raw(web, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64)))
    long_uri = b"/" + b"a" * 9000 + b".cvd"
    statuses.append(send_raw(web, b"GET " + long_uri + b" HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert statuses == [200, 200, 200, 400, 414]
    wait_logged(web, 5)
    with web.access_log.open("ab") as log:  # another writer's lines
        log.write(b"\x00\xff" * 10 + b"\n" + b"z" * 20000 + b"\n")
        log.write(b'1.2.3.4 - - [t] "GET /daily.cvd HTTP/1.1" 200 -7 "-" "ClamAV/1.4.6"\n')
        log.write(b'1.2.3.4 - - [t] "GET /d.cvd HTTP/1.1" 200 ' + b"9" * 20 + b' "-" "x"\n')
    res = mirror.run()
    assert res.rc == 0 and res.report["status"] == "ok", res.stderr
    t = res.report["traffic"]
    assert (t["lines"], t["requests"], t["excluded"], t["malformed"]) == (9, 6, 0, 3)
    # nginx logs the oversize URI cut short (no longer a .cvd), the binary one escaped
    assert (t["kinds"]["cvd"]["requests"], t["kinds"]["other"]["requests"]) == (4, 2)
    assert (t["statuses"]["2xx"], t["statuses"]["4xx"]) == (4, 2)
    assert t["bytes"] >= 1 << 40  # the huge size, clamped to 1 TiB
    assert t["bytes"] < (1 << 40) + (1 << 30)
    assert t["clients"]["1"] == 2
