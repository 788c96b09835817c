"""The certificate checks of a monitor pass: each mirror with an ``https`` URL in the
inventory, one TLS handshake as freshclam's (`syncd.httpcheck.tls`), bounded and each mirror
its own failure boundary. Judging them is `syncd.monitor.certs`'s; the pass is
`syncd.monitor.run`'s."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import trio

from syncd.httpcheck.tls import certificate, contexts
from syncd.monitor.certs import CertSeen
from syncd.text import clean, internal_error


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or 443


async def observe_certs(
    mirrors: Sequence[tuple[str, str]],
    *,
    cafile: str | None = None,
    concurrency: int = 50,
    timeout_s: float = 10.0,
    deadline_s: float = 120.0,
    clock: Callable[[], float] = time.time,
) -> list[CertSeen]:
    """Given (mirror, https URL) pairs, return what a handshake with each showed; one that ran
    past `deadline_s` (the pass's) or raised what no adapter translated is that mirror's
    failure, never the pass's."""
    limiter = trio.CapacityLimiter(concurrency)
    found: dict[str, CertSeen] = {}
    try:
        tls = contexts(cafile)
    except (OSError, ssl.SSLError) as err:  # no store to verify against: every check says so
        why = clean(f"cannot load the CA file {cafile or '(system store)'}: {err}", 300)
        at = clock()
        return [CertSeen(name, *_host_port(url), at, failure=why) for name, url in mirrors]

    async def one(name: str, url: str) -> None:
        host, port = _host_port(url)
        async with limiter:
            at = clock()
            try:
                answer = await certificate(host, port, timeout_s=timeout_s, tls=tls)
                found[name] = CertSeen(
                    name,
                    host,
                    port,
                    at,
                    answer.cert,
                    answer.verify_code,
                    answer.verify_error,
                    answer.failure,
                )
            except Exception as err:  # one mirror's fault stays that mirror's
                why = internal_error(err)
                found[name] = CertSeen(name, host, port, at, failure=why)

    with trio.move_on_after(deadline_s):
        async with trio.open_nursery() as nursery:
            for name, url in mirrors:
                nursery.start_soon(one, name, url)
    at = clock()
    for name, url in mirrors:
        if name not in found:
            host, port = _host_port(url)
            found[name] = CertSeen(name, host, port, at, failure="monitor run deadline")
    return [found[name] for name, _ in mirrors]
