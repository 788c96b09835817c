"""A monitor pass survives any one mirror: real nginx for the good mirror, a hostile HTTP
server for a redirect httpx cannot build, and (a fault no real server produces on demand) a
check that raises what no adapter translates. Each bad one is its own failed check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from devtools.harness.cvd import DEFAULT_VERSIONS, write_release
from devtools.harness.nginx import Nginx
from syncd.monitor import checks as monitor
from syncd.monitor.checks import MonitorTarget, observe
from tests.fuzz.hostilehttp import HostileHttp


def test_each_hostile_mirror_is_its_own_failed_check(
    tmp_path: Path, nginx_factory: Callable[..., Nginx], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "good"
    write_release(root, **DEFAULT_VERSIONS)
    web = nginx_factory(root)
    real_check = monitor.check

    async def check(client: Any, target: Any, *args: Any, **kw: Any) -> Any:
        if target.url.endswith(":9"):  # the mirror whose check hits a bug
            raise ZeroDivisionError("division by zero")
        return await real_check(client, target, *args, **kw)

    monkeypatch.setattr(monitor, "check", check)
    with HostileHttp() as hostile:
        answer = b"HTTP/1.1 302 Found\r\nLocation: javascript:x\r\nContent-Length: 0\r\n\r\n"
        hostile.queue(*[answer] * 5)
        mirrors = [
            MonitorTarget("good", web.base_url, "PL"),
            MonitorTarget("redirect", hostile.base_url, "PL"),
            MonitorTarget("buggy", "http://127.0.0.1:9", "PL"),
        ]
        found = trio.run(
            lambda: observe(mirrors, sorted(DEFAULT_VERSIONS), timeout_s=3, deadline_s=30)
        )
    checks = {o.mirror: o.check for o in found}
    assert checks["good"].ok and checks["good"].versions == DEFAULT_VERSIONS
    assert not checks["redirect"].ok and "unusable URL" in (checks["redirect"].error or "")
    assert not checks["buggy"].ok
    assert checks["buggy"].error == "internal error: ZeroDivisionError: division by zero"
