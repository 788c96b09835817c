"""HTTP checks against a real nginx: what freshclam would see, redirects refused, the tail of
each CVD compared with the source tree's; and against hostile servers: every answer bounded."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from devtools.harness.cvd import build_cvd, release_time, write_release
from devtools.harness.hostilehttp import (
    Answer,
    RoutedHttp,
    answer,
    chunked_flood,
    endless,
    gzip_bomb,
)
from devtools.harness.nginx import Nginx
from pushwire.cvd import parse_header
from syncd.files import read_cvd_tails
from syncd.httpcheck.answer import tail_span
from syncd.httpcheck.client import CheckFailed, check, local_test, new_client, targets
from syncd.release.manifest import CvdTail
from tests.publish.slowhttp import SlowHttp


def _docroot(tmp_path: Path, daily: int = 28034) -> Path:
    root = tmp_path / "htdocs"
    write_release(root, daily)
    (root / "timestamp").write_text("1800000000\n")  # read back, never aged (noqa: date)
    return root


async def _check(web: Nginx, host: str = "db.pl.clamav.net") -> object:
    [target] = await targets(web.base_url, host)
    async with new_client(5.0, 4) as client:
        return await check(client, target, ["main", "daily", "bytecode"])


@pytest.mark.trio
async def test_reads_timestamp_and_versions(
    nginx_factory: Callable[..., Nginx], tmp_path: Path
) -> None:
    web = nginx_factory(_docroot(tmp_path))
    served = await _check(web)
    assert served.family == "IPv4"  # type: ignore[attr-defined]
    assert served.timestamp == 1_800_000_000  # type: ignore[attr-defined]
    assert served.versions == {"main": 62, "daily": 28034, "bytecode": 335}  # type: ignore[attr-defined]
    log = (web.workdir / "access.log").read_text()
    assert '"ClamAV-MirrorCheck"' in log
    assert " 206 " in log  # the CVDs were read with Range requests, 512 bytes each


@pytest.mark.trio
async def test_wrong_vhost_is_a_failure(
    nginx_factory: Callable[..., Nginx], tmp_path: Path
) -> None:
    web = nginx_factory(_docroot(tmp_path))
    with pytest.raises(CheckFailed, match="timestamp"):
        await _check(web, host="unrelated.example")


@pytest.mark.trio
async def test_redirect_is_a_failure(nginx_factory: Callable[..., Nginx], tmp_path: Path) -> None:
    web = nginx_factory(
        _docroot(tmp_path),
        extra_locations=[
            "location = /daily.cvd { return 302 http://elsewhere.example/daily.cvd; }"
        ],
    )
    with pytest.raises(
        CheckFailed,
        match=r"redirects to http://elsewhere\.example/daily\.cvd: a mirror must serve its files",
    ):
        await _check(web)


@pytest.mark.trio
async def test_missing_and_corrupt_files(
    nginx_factory: Callable[..., Nginx], tmp_path: Path
) -> None:
    root = _docroot(tmp_path)
    (root / "bytecode.cvd").unlink()
    web = nginx_factory(root)
    with pytest.raises(CheckFailed, match=r"/bytecode\.cvd answered HTTP 404"):
        await _check(web)
    (root / "bytecode.cvd").write_bytes(b"<html>maintenance</html>" * 40)
    with pytest.raises(CheckFailed, match="not a ClamAV-VDB header"):
        await _check(web)
    (root / "timestamp").write_text("yesterday")
    with pytest.raises(CheckFailed, match="not a unix time"):
        await _check(web)


@pytest.mark.trio
async def test_unreachable(tmp_path: Path) -> None:
    from devtools.harness.faultproxy import closed_port

    [target] = await targets(f"http://127.0.0.1:{closed_port()}", "db.pl.clamav.net")
    async with new_client(2.0, 1) as client:
        with pytest.raises(CheckFailed, match="ConnectError"):
            await check(client, target, ["daily"])


@pytest.mark.trio
async def test_one_target_per_address_family() -> None:
    found = await targets("http://localhost:8080/mirror/", "db.pl.clamav.net")
    assert {t.family for t in found} <= {"IPv4", "IPv6"}
    assert all(t.url.endswith(":8080/mirror") for t in found)
    assert any(t.url.startswith("http://127.0.0.1:") for t in found)


@pytest.mark.trio
async def test_mirror_ignoring_range_is_not_downloaded_whole(
    nginx_factory: Callable[..., Nginx], tmp_path: Path
) -> None:
    web = nginx_factory(
        _docroot(tmp_path), extra_locations=[r"location ~ \.cvd$ { max_ranges 0; }"]
    )
    with pytest.raises(CheckFailed, match=r"sends \d+ bytes where 512 were asked for"):
        await _check(web)


def _tree_pair(tmp_path: Path) -> tuple[Path, Path]:
    """A source tree and the same release served by a mirror (CVDs with a tail past the header
    and past the 4096 bytes compared)."""
    source, served = tmp_path / "source", tmp_path / "htdocs"
    for root in (source, served):
        write_release(root, 28034, payload_size=20_000)
        (root / "timestamp").write_text("1800000000\n")  # read back, never aged (noqa: date)
    return source, served


async def _incomplete(web: Nginx, source: Path) -> tuple[str, ...]:
    [target] = await targets(web.base_url, "db.pl.clamav.net")
    async with new_client(5.0, 4) as client:
        served = await check(client, target, DBS, tails=read_cvd_tails(source))
    return served.incomplete


DBS = ["main", "daily", "bytecode"]


@pytest.mark.trio
async def test_the_tail_of_each_cvd_is_the_source_trees(
    nginx_factory: Callable[..., Nginx], tmp_path: Path
) -> None:
    """A body cut short or swapped under the release's header is caught by the last 4096 bytes
    (a Range request), compared with the source tree's. Before the tails were compared each of
    these mirrors was judged to serve the release (checked on the code before, where the
    header alone was read: every case below passed as whole)."""
    source, served = _tree_pair(tmp_path)
    web = nginx_factory(served)
    assert await _incomplete(web, source) == ()
    log = (web.workdir / "access.log").read_text()
    assert log.count(" 206 ") == 6  # a header and a tail per CVD
    whole = (source / "daily.cvd").read_bytes()
    size = len(whole)
    # cut short by 100 bytes: the tail's span reaches past its end
    (served / "daily.cvd").write_bytes(whole[:-100])
    [problem] = await _incomplete(web, source)
    assert problem == f"/daily.cvd is {size - 100} bytes, the release's is {size}"
    # cut short before the compared span even begins: 416
    (served / "daily.cvd").write_bytes(whole[:1000])
    [problem] = await _incomplete(web, source)
    assert problem == f"/daily.cvd is shorter than the release's {size} bytes (HTTP 416)"
    # the same size, another body under the release's header
    swapped = whole[:512] + bytes(reversed(whole[512:]))
    (served / "daily.cvd").write_bytes(swapped)
    [problem] = await _incomplete(web, source)
    assert problem == "/daily.cvd's last 4096 bytes differ from the release's"
    # the same version built again (another body, another MD5 in the header)
    rebuilt = release_time() - timedelta(days=1)  # any other time builds another body
    write_release(served, 28034, payload_size=20_000, build_time=rebuilt)
    problems = await _incomplete(web, source)
    assert len(problems) == 3 and all("with another body (MD5" in p for p in problems), problems
    # an older version is the freshness policy's to judge (lagging), not a broken tail
    write_release(served, 28033, main=61, bytecode=334, payload_size=20_000)
    assert await _incomplete(web, source) == ()


def _mirror(routes: dict[str, Answer]) -> RoutedHttp:
    return RoutedHttp({"/timestamp": answer(b"1800000000\n"), **routes})  # (noqa: date)


async def _check_daily(mirror: RoutedHttp, tails: tuple[CvdTail, ...] = ()) -> object:
    [target] = await targets(mirror.base_url, "db.pl.clamav.net")
    async with new_client(5.0, 4) as client:
        return await check(client, target, ["daily"], tails=tails)


HEAD = build_cvd("daily", 28034, payload_size=64)[:512]


@pytest.mark.trio
@pytest.mark.parametrize(
    ("attack", "why"),
    [
        (
            answer(
                gzip_bomb(HEAD, 64 << 20),
                b"206 Partial Content",
                b"Content-Encoding: gzip, gzip, gzip\r\n",
            ),
            "/daily.cvd answered with Content-Encoding 'gzip, gzip, gzip': a mirror must serve",
        ),
        (
            answer(HEAD, b"206 Partial Content", b"Content-Encoding: br\r\n"),
            "Content-Encoding 'br'",
        ),
        (
            chunked_flood(HEAD, 64 << 20),
            "/daily.cvd answered with both Content-Length and Transfer-Encoding",
        ),
        (answer(HEAD, b"206 Partial Content", b"Content-Length: 600\r\n"), "Content-Length"),
    ],
    ids=["gzip-bomb", "brotli", "length-and-chunked", "two-lengths"],
)
async def test_hostile_answers_are_refused_before_their_body_is_read(
    attack: Answer, why: str
) -> None:
    """Each answer is refused from its headers: nothing decoded, nothing read past them. On
    the code before, the bomb (64 MB of zeros after a valid header, 3 layers of gzip) and the
    chunked flood (a valid header, then 64 MB) were read and judged to serve daily 28034."""
    with (
        _mirror({"/daily.cvd": attack}) as mirror,
        pytest.raises(CheckFailed, match=re.escape(why)),
    ):
        await _check_daily(mirror)


@pytest.mark.trio
async def test_a_mirror_ignoring_range_on_the_tail_is_bounded_and_fails() -> None:
    """A 200 with the whole file to the tail's Range request is refused from its headers (its
    length is past the bytes asked for), and so is one without a length: neither is read.
    The same mirror answering the Range is whole (the check is not vacuous)."""
    whole = build_cvd("daily", 28034, payload_size=20_000)
    first, last = tail_span(len(whole)) or (0, 0)
    expected = CvdTail("daily", 28034, parse_header(whole).md5, len(whole), first, whole[first:])
    routes: dict[str, Answer] = {
        "/timestamp": answer(b"1800000000\n"),  # parsed only (noqa: date)
        "/daily.cvd bytes=0-511": answer(whole[:512], b"206 Partial Content"),
        f"/daily.cvd bytes={first}-{last}": answer(
            whole[first:],
            b"206 Partial Content",
            b"Content-Range: bytes %d-%d/%d\r\n" % (first, last, len(whole)),
        ),
    }
    with RoutedHttp(routes) as mirror:
        served = await _check_daily(mirror, (expected,))
    assert served.incomplete == (), served  # type: ignore[attr-defined]
    for ignored in (answer(whole), endless(whole)):
        routes[f"/daily.cvd bytes={first}-{last}"] = ignored
        with RoutedHttp(routes) as mirror:
            served = await _check_daily(mirror, (expected,))
        [why] = served.incomplete  # type: ignore[attr-defined]
        assert why.startswith("/daily.cvd answered 200 to a Range request: a mirror must serve")


@pytest.mark.trio
async def test_a_check_has_a_deadline_beyond_each_reads_timeout() -> None:
    """A mirror that sends a byte every second never trips the 2 s read timeout; the whole
    check ends at its own deadline (2 s for each of its 2 requests). Before, it took as long
    as the mirror chose (about 30 s here)."""
    with SlowHttp(interval_s=1.0) as slow:
        [target] = await targets(slow.base_url, "db.pl.clamav.net")
        async with new_client(2.0, 2) as client:
            with pytest.raises(CheckFailed, match=r"the whole check \(IPv4\) took longer than 4 s"):
                await check(client, target, ["daily"])


def test_local_test_is_bounded_in_bytes_and_time() -> None:
    """``syncd mirrors check`` reads /local_test raw: 64 bytes at most, within its deadline,
    never decoded. Before, an endless body was read whole (a MemoryError under a 3 GB limit),
    a dripping one for as long as it dripped, and a gzip'd one was inflated."""
    with RoutedHttp({"/local_test": endless(b"Success")}) as mirror:
        with pytest.raises(CheckFailed, match="/local_test sends more than the 64 bytes asked"):
            local_test(mirror.base_url, "db.test.clamav.net")
        mirror.routes["/local_test"] = answer(b"Success\n")
        assert local_test(mirror.base_url, "db.test.clamav.net") == (200, "Success\n", None)
        mirror.routes["/local_test"] = answer(
            gzip_bomb(b"Success", 1 << 20), extra=b"Content-Encoding: gzip\r\n"
        )
        with pytest.raises(CheckFailed, match="Content-Encoding 'gzip'"):
            local_test(mirror.base_url, "db.test.clamav.net")
    with (
        SlowHttp(interval_s=0.5, body=b"Success\n") as slow,
        pytest.raises(CheckFailed, match="/local_test took longer than 1 s"),
    ):
        local_test(slow.base_url, "db.test.clamav.net", timeout_s=5.0, deadline_s=1.0)
