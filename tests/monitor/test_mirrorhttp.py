"""HTTP checks against a real nginx: what freshclam would see, redirects refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from devtools.harness.cvd import write_release
from devtools.harness.nginx import Nginx
from syncd.adapters.mirrorhttp import CheckFailed, check, new_client, targets


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
