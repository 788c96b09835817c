"""Ask a mirror over HTTP what it serves, the way freshclam would (httpx, under trio).

One check = ``GET /timestamp``, a Range request for the first 512 bytes of each CVD, and a plain
``GET`` of each file the release says must be served whole (the current ``daily-N.cdiff``, the
current ``.sign`` files: see syncd.core.manifest), compared byte for byte; sent
with ``User-Agent: ClamAV-MirrorCheck`` and the ``Host`` freshclam uses (``db.XY.clamav.net``).
A redirect is a failure (docs/monitoring.md, "Redirects"). A mirror whose name has both IPv4 and
IPv6 addresses is checked on each family separately, since a broken family hurts its users.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx
import trio

from pushwire.cvd import HEADER_SIZE, CvdError, parse_header
from syncd.core.inventory import host_problem
from syncd.core.manifest import ReleaseFile, whole

USER_AGENT = "ClamAV-MirrorCheck"
MAX_TIMESTAMP_BYTES = 64


class CheckFailed(Exception):
    """The mirror did not answer as a mirror must; the message is the reason, one line."""


@dataclass(frozen=True)
class Served:
    family: str  # "IPv4" / "IPv6"
    timestamp: float
    versions: dict[str, int]
    incomplete: tuple[str, ...] = ()  # release files not served whole: one problem each


@dataclass(frozen=True)
class Target:
    """Where to send a request: the URL to connect to and the Host header to present."""

    family: str
    url: str  # base URL with an IP literal (or the original when resolution is not ours)
    host_header: str


async def targets(base_url: str, host_header: str) -> list[Target]:
    """Return one target per address family the base URL's host resolves to."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        return [Target(f"IPv{ip.version}", base_url.rstrip("/"), host_header)]
    problem = host_problem(host)
    if problem:
        raise CheckFailed(f"cannot resolve {host[:60]!r}: {problem}")
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as err:
        raise CheckFailed(f"cannot resolve {host}: {err}") from None
    found: dict[str, Target] = {}
    for family, _, _, _, sockaddr in infos:
        fam = "IPv6" if family == socket.AF_INET6 else "IPv4"
        if fam in found:
            continue
        literal = f"[{sockaddr[0]}]" if fam == "IPv6" else str(sockaddr[0])
        netloc = f"{literal}:{port}"
        url = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        found[fam] = Target(fam, url, host_header)
    return [found[f] for f in sorted(found)]


async def _get(
    client: httpx.AsyncClient, target: Target, path: str, headers: dict[str, str], limit: int
) -> bytes:
    url = f"{target.url}/{path}"
    try:
        async with client.stream(
            "GET", url, headers={"Host": target.host_header, **headers}
        ) as resp:
            if resp.is_redirect:
                where = resp.headers.get("location", "?")
                raise CheckFailed(
                    f"/{path} redirects to {where[:200]}: a mirror must serve its files itself "
                    "(freshclam before 0.102 fails on a redirect, later ones follow it to a host "
                    "nobody checks)"
                )
            if resp.status_code not in (200, 206):
                raise CheckFailed(f"/{path} answered HTTP {resp.status_code}")
            size = resp.headers.get("content-length", "")
            if not (size.isascii() and size.isdigit()):
                # static files always carry a length; without one the body could be endless,
                # and reading part of it would leave the stream half consumed
                raise CheckFailed(f"/{path} answered without a Content-Length")
            if int(size) > limit:
                raise CheckFailed(f"/{path} sends {size} bytes where {limit} were asked for")
            return await resp.aread()  # exactly Content-Length bytes (the framing enforces it)
    except httpx.TimeoutException:
        raise CheckFailed(f"/{path} timed out ({target.family})") from None
    except httpx.InvalidURL as err:  # a redirect to javascript:, mailto:, data: ...
        raise CheckFailed(
            f"/{path} answered with an unusable URL ({target.family}): {str(err)[:200]}"
        ) from None
    except (httpx.HTTPError, httpx.StreamError) as err:
        raise CheckFailed(
            f"/{path} failed ({target.family}): {type(err).__name__}: {err}"
        ) from None


async def _problem(client: httpx.AsyncClient, target: Target, expected: ReleaseFile) -> str | None:
    """Fetch `expected` whole from `target`; return why it is not the release's file, or None."""
    try:
        body = await _get(client, target, expected.name, {}, expected.size)
    except CheckFailed as err:
        return str(err)
    return whole(expected, 200, body, hashlib.sha256(body).hexdigest())


async def check(
    client: httpx.AsyncClient,
    target: Target,
    databases: Sequence[str],
    files: Sequence[ReleaseFile] = (),
) -> Served:
    """Return what `target` serves, with each of `files` it does not serve whole in
    ``incomplete``; raise CheckFailed with the first problem of the timestamp or a header."""
    raw = await _get(client, target, "timestamp", {}, MAX_TIMESTAMP_BYTES)
    text = raw.decode("ascii", errors="replace").strip()
    if not (text.isascii() and text.isdigit()):
        raise CheckFailed(f"/timestamp is not a unix time: {text[:40]!r}")
    versions: dict[str, int] = {}
    for db in databases:
        head = await _get(
            client, target, f"{db}.cvd", {"Range": f"bytes=0-{HEADER_SIZE - 1}"}, HEADER_SIZE
        )
        try:
            versions[db] = parse_header(head).version
        except CvdError as err:
            raise CheckFailed(f"/{db}.cvd: {err}") from None
    problems = [await _problem(client, target, f) for f in files]
    return Served(target.family, float(text), versions, tuple(p for p in problems if p))


def new_client(timeout_s: float, max_connections: int) -> httpx.AsyncClient:
    """An HTTP client for checks: no redirects followed, no proxies from the environment."""
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(timeout_s),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=0),
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
    )


def local_test(
    base_url: str, host_header: str, timeout_s: float = 10.0
) -> tuple[int, str, str | None]:
    """GET /local_test with `Host: host_header`; return status, body (bounded), Location."""
    with httpx.Client(
        follow_redirects=False,
        trust_env=False,
        timeout=timeout_s,
        headers={"User-Agent": USER_AGENT},
    ) as client:
        resp = client.get(f"{base_url.rstrip('/')}/local_test", headers={"Host": host_header})
        return resp.status_code, resp.text[:200], resp.headers.get("location")
