"""A steady check asks each CVD proven before with one request, its last bytes, and trusts it
only under the validators proven; whatever else comes back starts the whole proof again (the
header and the 4096-byte tail). Against a real nginx: the steady pass's requests (nginx's log),
a CVD touched (proven again), a CVD rewritten below its last bytes under a new mtime (caught).
Against a light server: a server that answers the steady request 412 (as nginx would to a
failed ``If-Match``), and one that answers it 206 from the file as it is now with its
validators changed or gone (a server ignoring any precondition): each proven again or caught,
never trusted on its bytes alone. And the headers a check sends: ``Host``, ``User-Agent`` and
the Range, nothing httpx would add.

Proven able to fail: with `_cvd_unchanged` planted to trust a 206 whose bytes and size match
without comparing its validators, the rewritten-below-its-last-bytes case (nginx) and the
ignoring server's rewritten case were judged fresh, and the touched case kept the old ETag;
with the header still asked in a steady pass, the request count failed."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from devtools.harness.cvd import write_release_tree
from devtools.harness.hostilehttp import RoutedHttp, answer
from devtools.harness.nginx import Nginx
from devtools.harness.plainhttp import PlainHttp
from syncd.files import read_source_tree
from syncd.httpcheck.client import USER_AGENT, Served, check, new_client, targets
from syncd.httpcheck.conditional import Proven
from syncd.release.manifest import FILE_TAIL_BYTES
from syncd.release.tree import SourceTree

DBS = ["bytecode", "daily", "main"]
T0 = 1_900_000_000  # the served files' mtimes: any fixed second (noqa: date)


def _tree(tmp_path: Path) -> tuple[Path, SourceTree]:
    source = tmp_path / "source"
    write_release_tree(source, 28034, cdiffs=1)
    served = tmp_path / "htdocs"
    served.mkdir()
    for p in source.iterdir():
        (served / p.name).write_bytes(p.read_bytes())
        os.utime(served / p.name, (T0, T0))
    return served, read_source_tree(source)


def _check(base_url: str, tree: SourceTree, known: dict[str, Proven] | None) -> Served:
    async def one() -> Served:
        [target] = await targets(base_url, "db.pl.clamav.net")
        async with new_client(5.0, 2) as client:
            return await check(client, target, DBS, (), tree.tails, known=known)

    return trio.run(one)


def _cvd_log(web: Nginx, mark: int) -> list[tuple[str, int]]:
    """(path, body bytes) of each CVD request nginx logged past byte `mark`."""
    out = []
    for line in (web.workdir / "access.log").read_bytes()[mark:].decode().splitlines():
        path = line.split('"')[1].split()[1]
        if path.endswith(".cvd"):
            out.append((path, int(line.split('"')[2].split()[1])))
    return out


def _differs(tree: SourceTree, db: str) -> tuple[str]:
    n = len(next(t for t in tree.tails if t.db == db).data)
    return (f"/{db}.cvd's last {n} bytes differ from the release's",)


def _fresh(served: Served) -> bool:
    return served.incomplete == () and served.versions == {
        "bytecode": 335,
        "daily": 28034,
        "main": 62,
    }


def test_a_steady_check_asks_each_cvd_once_for_its_last_bytes(
    tmp_path: Path, nginx_factory: Callable[..., Nginx]
) -> None:
    served, tree = _tree(tmp_path)
    web = nginx_factory(served)
    first = _check(web.base_url, tree, {})
    assert _fresh(first) and len(first.proven) == 3
    mark = (web.workdir / "access.log").stat().st_size
    steady = _check(web.base_url, tree, {p.name: p for p in first.proven})
    assert _fresh(steady) and steady.proven == first.proven
    seen = _cvd_log(web, mark)
    assert sorted(seen) == [(f"/{db}.cvd", FILE_TAIL_BYTES) for db in DBS]  # no header asked


def test_a_cvd_touched_is_proven_again_and_one_rewritten_below_its_last_bytes_is_caught(
    tmp_path: Path, nginx_factory: Callable[..., Nginx]
) -> None:
    served, tree = _tree(tmp_path)
    web = nginx_factory(served)
    known = {p.name: p for p in _check(web.base_url, tree, {}).proven}
    daily = served / "daily.cvd"
    os.utime(daily, (T0 + 60, T0 + 60))  # touched: its bytes as they were, a new ETag
    again = _check(web.base_url, tree, known)
    assert _fresh(again)
    [proof] = [p for p in again.proven if p.name == "daily.cvd"]
    assert proof.etag != known["daily.cvd"].etag  # proven again whole, the new ETag kept
    # one byte changed above the last bytes a steady pass compares, the mtime moved with it
    data = bytearray(daily.read_bytes())
    data[-FILE_TAIL_BYTES - 100] ^= 0xFF
    daily.write_bytes(bytes(data))
    os.utime(daily, (T0 + 120, T0 + 120))
    after = _check(web.base_url, tree, {p.name: p for p in again.proven})
    assert after.incomplete == _differs(tree, "daily")
    assert "daily.cvd" not in {p.name for p in after.proven}


def test_a_412_or_a_206_under_other_validators_is_never_trusted(tmp_path: Path) -> None:
    """The steady request answered 412 (a precondition failed) or 206 with the right last
    bytes but other validators or none (a server ignoring any precondition, a file replaced
    below its last bytes): the whole proof is made again, which judges the file as it is."""
    served, tree = _tree(tmp_path)
    with PlainHttp(served) as web:
        known = {p.name: p for p in _check(web.base_url, tree, {}).proven}
        assert len(known) == 3
        # rewritten below its last bytes, its mtime moved: the light server answers the steady
        # Range from the file as it is now, with the new validators
        main = served / "main.cvd"
        data = bytearray(main.read_bytes())
        data[-FILE_TAIL_BYTES - 1] ^= 0xFF
        main.write_bytes(bytes(data))
        os.utime(main, (T0 + 60, T0 + 60))
        after = _check(web.base_url, tree, known)
        assert after.incomplete == _differs(tree, "main")
    with PlainHttp(served, validators=False) as web:  # no validator: never leaned on
        after = _check(web.base_url, tree, known)
        assert after.incomplete == _differs(tree, "main")
        assert after.proven == ()
    tail = next(t for t in tree.tails if t.db == "daily")
    head = (tmp_path / "source" / "daily.cvd").read_bytes()
    etag = known["daily.cvd"].etag
    assert etag is not None
    partial = b"206 Partial Content"
    routes = {
        "/timestamp": answer(b"1900000000\n"),  # (noqa: date)
        f"/daily.cvd bytes=-{FILE_TAIL_BYTES}": answer(
            b"<html>412</html>", b"412 Precondition Failed", b"ETag: %s\r\n" % etag.encode()
        ),
        "/daily.cvd bytes=0-511": answer(
            head[:512],
            partial,
            b"Content-Range: bytes 0-511/%d\r\nETag: %s\r\n" % (tail.size, etag.encode()),
        ),
        f"/daily.cvd bytes={tail.first}-{tail.last}": answer(
            tail.data,
            partial,
            b"Content-Range: bytes %d-%d/%d\r\nETag: %s\r\n"
            % (tail.first, tail.last, tail.size, etag.encode()),
        ),
    }
    with RoutedHttp(routes) as web:

        async def one() -> Served:
            [target] = await targets(web.base_url, "db.pl.clamav.net")
            async with new_client(5.0, 2) as client:
                return await check(client, target, ["daily"], (), [tail], known=known)

        served_412 = trio.run(one)
        assert served_412.incomplete == () and served_412.versions == {"daily": 28034}
        [again] = served_412.proven  # proven again by the whole proof
        assert (again.proof, again.etag) == (known["daily.cvd"].proof, etag)
        assert web.paths == ["/timestamp", "/daily.cvd", "/daily.cvd", "/daily.cvd"]


@pytest.mark.trio
async def test_a_check_sends_host_user_agent_and_its_range_only() -> None:
    async with new_client(5.0, 1) as client:
        request = client.build_request(
            "GET",
            "http://127.0.0.1:9/daily.cvd",
            headers={"Host": "db.pl.clamav.net", "Range": "bytes=-32"},
        )
    assert sorted(request.headers.keys()) == ["host", "range", "user-agent"]
    assert request.headers["user-agent"] == USER_AGENT
