"""Ask a mirror over HTTP what it serves, the way freshclam would (httpx, under trio).

One check = ``GET /timestamp``, a Range request for the first 512 bytes of each CVD, a Range
request for the last 4096 bytes of each CVD served at the source tree's version (compared with
the tree's), and a plain ``GET`` of each file the release says must be served whole (the current
``daily-N.cdiff``, the current ``.sign`` files: see syncd.release.manifest), compared byte for byte;
sent with ``User-Agent: ClamAV-MirrorCheck`` and the ``Host`` freshclam uses
(``db.XY.clamav.net``), and no other header httpx would add. Given what passes before proved
(the monitor), a release file or a CVD proven is asked again with one Range request for its
last bytes instead, its validators compared with those remembered
(syncd.httpcheck.conditional). A redirect is a failure (docs/monitoring.md, "Redirects"). A
mirror whose name has both IPv4 and IPv6 addresses is checked on each family separately,
since a broken family hurts its users.

Every answer is bounded before its body is read (syncd.httpcheck.answer): no encoding is
asked for (freshclam asks for none) and any ``Content-Encoding`` refused (nothing is ever
decoded), conflicting framing refused, each body read raw up to the bytes asked for (the
expected size; 64 bytes for ``timestamp`` and ``local_test``), and each check has a deadline
of its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import socket
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit, urlunsplit

import httpx
import trio

from pushwire.cvd import HEADER_SIZE, CvdError, parse_header
from pushwire.maintenance import MAX_NOTICE_BYTES, NOTICE_NAME
from syncd.httpcheck.answer import encoding_problem, framing_problem, range_problem, range_size
from syncd.httpcheck.conditional import (
    Proven,
    Validators,
    cvd_proof,
    file_span,
    last_bytes,
    remember,
    still,
    usable_for,
    validators,
)
from syncd.inventory.model import host_problem
from syncd.release.manifest import FILE_TAIL_BYTES, CvdTail, ReleaseFile, tail_problem, whole
from syncd.text import internal_error

USER_AGENT = "ClamAV-MirrorCheck"
MAX_TIMESTAMP_BYTES = 64
MAX_LOCAL_TEST_BYTES = 64  # "Success" and a newline; anything longer is not that


class CheckFailed(Exception):
    """The mirror did not answer as a mirror must; the message is the reason, one line."""


@dataclass(frozen=True)
class Served:
    family: str  # "IPv4" / "IPv6"
    timestamp: float
    versions: dict[str, int]
    incomplete: tuple[str, ...] = ()  # release files not served whole: one problem each
    proven: tuple[Proven, ...] = ()  # what this check proved (syncd.httpcheck.conditional)


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


def _refused(resp: httpx.Response) -> str | None:
    """Why the answer's headers are refused before its body is read, or None."""
    items = resp.headers.multi_items()
    return encoding_problem(items) or framing_problem(items)


async def _read_capped(resp: httpx.Response, cap: int, path: str) -> bytes:
    """Return the answer's body as sent (never decoded); raise CheckFailed past `cap` bytes.

    Past the cap the response is closed at once (its connection with it) and the stream read to
    its end, which the closed connection makes immediate: httpx's inner stream generators then
    finish rather than being left to the garbage collector half read."""
    body = bytearray()
    over = False
    raw = cast(AsyncGenerator[bytes, None], resp.aiter_raw())  # typed as an iterator: it is one
    async with contextlib.aclosing(raw) as chunks:
        try:
            async for chunk in chunks:
                if over:
                    continue  # what was buffered before the close: dropped
                if len(body) + len(chunk) > cap:
                    over = True
                    await resp.aclose()
                    continue
                body += chunk
        except (httpx.HTTPError, httpx.StreamError, trio.ClosedResourceError):
            if not over:
                raise
    if over:
        raise CheckFailed(f"/{path} sends more than the {cap} bytes asked for")
    return bytes(body)


async def _get(
    client: httpx.AsyncClient,
    target: Target,
    path: str,
    headers: dict[str, str],
    limit: int,
    *,
    statuses: tuple[int, ...] = (200, 206),
) -> tuple[int, httpx.Headers, bytes]:
    """GET `path` of `target`; return the answer's status, headers and body (at most `limit`
    bytes, as stored); raise CheckFailed for a redirect, a status not in `statuses`, an
    encoding or a framing refused (syncd.httpcheck.answer), a body without a length or past
    `limit`."""
    url = f"{target.url}/{path}"
    try:
        async with client.stream(
            "GET", url, headers={"Host": target.host_header, **headers}
        ) as resp:
            if resp.is_redirect and resp.status_code != 304:  # 304: not modified, no move
                where = resp.headers.get("location", "?")
                raise CheckFailed(
                    f"/{path} redirects to {where[:200]}: a mirror must serve its files itself "
                    "(freshclam before 0.102 fails on a redirect, later ones follow it to a host "
                    "nobody checks)"
                )
            if resp.status_code not in statuses:
                if resp.status_code == 200 and "Range" in headers:
                    raise CheckFailed(
                        f"/{path} answered 200 to a Range request: a mirror must serve byte "
                        "ranges (freshclam asks for them; nginx and Apache do by default)"
                    )
                raise CheckFailed(f"/{path} answered HTTP {resp.status_code}")
            refused = _refused(resp)
            if refused:
                raise CheckFailed(f"/{path} {refused}")
            size = resp.headers.get("content-length", "")
            if not (size.isascii() and size.isdigit()):
                # static files always carry a length: without one the body could be endless
                raise CheckFailed(f"/{path} answered without a Content-Length")
            if int(size) > limit:
                raise CheckFailed(f"/{path} sends {size} bytes where {limit} were asked for")
            return resp.status_code, resp.headers, await _read_capped(resp, limit, path)
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


async def _problem(
    client: httpx.AsyncClient, target: Target, expected: ReleaseFile, learned: list[Proven]
) -> str | None:
    """Fetch `expected` whole from `target`; return why it is not the release's file, or None
    (and remember its validators in `learned`)."""
    try:
        _, headers, body = await _get(
            client, target, expected.name, {}, expected.size, statuses=(200,)
        )
    except CheckFailed as err:
        return str(err)
    return _judge_whole(expected, headers, body, learned)


def _judge_whole(
    expected: ReleaseFile, headers: httpx.Headers, body: bytes, learned: list[Proven]
) -> str | None:
    problem = whole(expected, 200, body, hashlib.sha256(body).hexdigest())
    if problem is None:
        seen = validators(headers.multi_items())
        proven = remember(expected.name, expected.sha256, expected.size, seen)
        if proven is not None:
            learned.append(proven)
    return problem


async def _conditional_problem(
    client: httpx.AsyncClient,
    target: Target,
    expected: ReleaseFile,
    known: Proven,
    learned: list[Proven],
) -> str | None:
    """Ask for the last bytes of `expected`, proven whole before as `known`; return why it is
    no longer the release's file, or None. Its bytes and size must be the release's and its
    validators `known`'s (syncd.httpcheck.conditional.still); an answer with other validators
    (the file touched or replaced) is read again whole, as is a 200 (a server ignoring Range)."""
    span = file_span(expected.size, len(expected.tail))
    if span is None:
        return await _problem(client, target, expected, learned)
    first, last = span
    try:
        status, headers, body = await _get(
            client,
            target,
            expected.name,
            {"Range": last_bytes(expected.size, len(expected.tail))},
            expected.size,
            statuses=(200, 206, 416),
        )
    except CheckFailed as err:
        return str(err)
    if status == 200:  # a server ignoring Range sent the whole file: compared again
        return _judge_whole(expected, headers, body, learned)
    problem = _last_bytes_problem(expected, (first, last), status, headers, body)
    seen = validators(headers.multi_items())
    if problem is None and not still(known, expected.sha256, expected.size, seen):
        return await _problem(client, target, expected, learned)  # changed: read whole
    if problem is None:
        learned.append(known)
    return problem


def _last_bytes_problem(
    expected: ReleaseFile, span: tuple[int, int], status: int, headers: httpx.Headers, body: bytes
) -> str | None:
    """Why a 206 or 416 answer to the Range request for `span` of `expected` is not the
    release's file's last bytes, or None."""
    first, last = span
    if status == 416:
        return f"/{expected.name} is shorter than the release's {expected.size} bytes (HTTP 416)"
    wrong = range_problem(headers.get("content-range"), first, last, expected.size)
    if wrong:
        return f"/{expected.name} {wrong}"
    if body != expected.tail[-(last - first + 1) :]:
        return f"/{expected.name}'s last {last - first + 1} bytes differ from the release's"
    return None


async def _file_problem(
    client: httpx.AsyncClient,
    target: Target,
    expected: ReleaseFile,
    known: Mapping[str, Proven] | None,
    learned: list[Proven],
) -> str | None:
    prior = (
        None
        if known is None
        else usable_for(known.get(expected.name), expected.sha256, expected.size)
    )
    if prior is None or not expected.tail:
        return await _problem(client, target, expected, learned)
    return await _conditional_problem(client, target, expected, prior, learned)


async def _tail_problem(
    client: httpx.AsyncClient, target: Target, expected: CvdTail, md5: str
) -> tuple[str | None, Validators]:
    """Fetch the bytes of `expected` (the tail of a CVD whose served header announced `md5`)
    with a Range request; return why they are not the release's, or None, and the validators
    the answer carried."""
    if md5 != expected.md5:
        return tail_problem(expected, md5, b""), Validators()
    path = f"{expected.db}.cvd"
    span = {"Range": f"bytes={expected.first}-{expected.last}"}
    try:
        status, headers, body = await _get(
            client, target, path, span, len(expected.data), statuses=(206, 416)
        )
    except CheckFailed as err:
        return str(err), Validators()
    if status == 416:  # the span starts past the end of the file served
        return (
            f"/{path} is shorter than the release's {expected.size} bytes (HTTP 416)",
            Validators(),
        )
    wrong = range_problem(
        headers.get("content-range"), expected.first, expected.last, expected.size
    )
    if wrong:
        return f"/{path} {wrong}", Validators()
    return tail_problem(expected, md5, body), validators(headers.multi_items())


async def _cvd_unchanged(
    client: httpx.AsyncClient, target: Target, expected: CvdTail, known: Proven
) -> bool:
    """Whether the CVD proven before as `known` is still that file, asked with one request for
    its last `FILE_TAIL_BYTES` bytes: the answer must carry `known`'s validators and the
    release's size in its Content-Range, and the bytes must be the release's. Anything else
    (another answer, a failure) is for the whole proof (the header and the tail) to judge."""
    n = min(FILE_TAIL_BYTES, len(expected.data))
    first, last = expected.size - n, expected.size - 1
    span = {"Range": last_bytes(expected.size, n)}
    try:
        _, headers, body = await _get(
            client, target, f"{expected.db}.cvd", span, n, statuses=(206,)
        )
    except CheckFailed:
        return False
    seen = validators(headers.multi_items())
    return (
        range_problem(headers.get("content-range"), first, last, expected.size) is None
        and body == expected.data[-n:]
        and still(known, cvd_proof(expected.version, expected.md5), expected.size, seen)
    )


async def _cvd_tail_problem(
    client: httpx.AsyncClient,
    target: Target,
    expected: CvdTail,
    head: tuple[str, httpx.Headers],
    learned: list[Proven],
) -> str | None:
    """Compare the tail of a CVD whose header answer announced `head` (its MD5 and headers);
    remember what was proven when the header's and the tail's answers carried the same
    validators and the release's size."""
    md5, headers = head
    seen = validators(headers.multi_items())
    size = range_size(headers.get("content-range"))
    problem, tail_seen = await _tail_problem(client, target, expected, md5)
    if problem is None and size == expected.size and tail_seen == seen:
        proof = cvd_proof(expected.version, expected.md5)
        proven = remember(f"{expected.db}.cvd", proof, expected.size, seen)
        if proven is not None:
            learned.append(proven)
    return problem


def _cvd_prior(tail: CvdTail | None, known: Mapping[str, Proven] | None) -> Proven | None:
    """What a pass before proved of the CVD whose tail is `tail`, when a steady pass may lean
    on it (the same version, MD5 and size, a validator remembered)."""
    if tail is None or known is None:
        return None
    proof = cvd_proof(tail.version, tail.md5)
    return usable_for(known.get(f"{tail.db}.cvd"), proof, tail.size)


def _deadline(client: httpx.AsyncClient, requests: int) -> float:
    """A whole check's deadline: the client's read timeout for each of its requests."""
    return (client.timeout.read or 10.0) * max(1, requests)


async def check(
    client: httpx.AsyncClient,
    target: Target,
    databases: Sequence[str],
    files: Sequence[ReleaseFile] = (),
    tails: Sequence[CvdTail] = (),
    *,
    known: Mapping[str, Proven] | None = None,
) -> Served:
    """Return what `target` serves, with each of `files` it does not serve whole and each CVD
    whose tail is not the release's (of `tails`, for a CVD served at its version) in
    ``incomplete``; raise CheckFailed with the first problem of the timestamp or a header, or
    when the whole check outlasts its deadline (every request's timeout, added).

    Without `known` (the publish's proof) every file is read whole and every tail compared.
    With it (what passes before proved on this target, by name: the monitor), a file or a
    tail proven before is asked again conditionally (syncd.httpcheck.conditional); what this
    check proved is returned in ``proven``."""
    again = 0 if known is None else len(tails) + len(files)  # a conditional answer, then whole
    limit = _deadline(client, 1 + len(databases) + len(tails) + len(files) + again)
    with trio.move_on_after(limit):
        return await _check(client, target, databases, files, tails, known=known)
    raise CheckFailed(f"the whole check ({target.family}) took longer than {limit:g} s")


async def _check(
    client: httpx.AsyncClient,
    target: Target,
    databases: Sequence[str],
    files: Sequence[ReleaseFile],
    tails: Sequence[CvdTail],
    *,
    known: Mapping[str, Proven] | None,
) -> Served:
    _, _, raw = await _get(client, target, "timestamp", {}, MAX_TIMESTAMP_BYTES)
    text = raw.decode("ascii", errors="replace").strip()
    if not (text.isascii() and text.isdigit()):
        raise CheckFailed(f"/timestamp is not a unix time: {text[:40]!r}")
    versions: dict[str, int] = {}
    problems: list[str | None] = []
    learned: list[Proven] = []
    by_db = {t.db: t for t in tails}
    for db in databases:
        tail = by_db.get(db)
        prior = _cvd_prior(tail, known)
        if (
            tail is not None
            and prior is not None
            and await _cvd_unchanged(client, target, tail, prior)
        ):
            versions[db] = tail.version  # the very file proven: its header too
            learned.append(prior)
            continue
        _, headers, head = await _get(
            client, target, f"{db}.cvd", {"Range": f"bytes=0-{HEADER_SIZE - 1}"}, HEADER_SIZE
        )
        try:
            header = parse_header(head)
        except CvdError as err:
            raise CheckFailed(f"/{db}.cvd: {err}") from None
        versions[db] = header.version
        if tail is not None and tail.version == header.version:
            problems.append(
                await _cvd_tail_problem(client, target, tail, (header.md5, headers), learned)
            )
    for f in files:
        problems.append(await _file_problem(client, target, f, known, learned))
    return Served(
        target.family, float(text), versions, tuple(p for p in problems if p), tuple(learned)
    )


async def maintenance_notice(client: httpx.AsyncClient, target: Target) -> tuple[int, bytes] | None:
    """Ask for /local_maintenance of `target` (at most `MAX_NOTICE_BYTES` as stored, within the
    client's read timeout in all); return its status and body, or None when no answer came
    (the mirror down, a timeout: what it said before still holds). It is asked with ``HEAD``
    first: a 404 or 410 (no notice, nearly every pass) is then answered without its error
    page; anything else is asked again with ``GET`` and read. An answer that is no notice (a
    redirect, too large, encoded, without a length) is returned as status 0 with the reason
    as its body."""
    url = f"{target.url}/{NOTICE_NAME}"
    headers = {"Host": target.host_header}
    with trio.move_on_after(client.timeout.read or 10.0):
        try:
            async with client.stream("HEAD", url, headers=headers) as resp:
                if resp.status_code in (404, 410):
                    return resp.status_code, b""
            async with client.stream("GET", url, headers=headers) as resp:
                return await _notice_answer(resp)
        except httpx.InvalidURL as err:  # a redirect to javascript:, mailto: ...
            return 0, f"answered with an unusable URL: {str(err)[:200]}".encode()
        except (httpx.HTTPError, httpx.StreamError):
            return None
    return None


async def _notice_answer(resp: httpx.Response) -> tuple[int, bytes]:
    if resp.status_code != 200:
        reason = f"redirects to {resp.headers.get('location', '?')[:100]}"
        return (0, reason.encode()) if resp.is_redirect else (resp.status_code, b"")
    refused = _refused(resp)
    size = resp.headers.get("content-length", "")
    if refused is None and not (size.isascii() and size.isdigit()):
        refused = "answered without a Content-Length"
    if refused is None and int(size) > MAX_NOTICE_BYTES:
        refused = f"sends {size} bytes, more than the {MAX_NOTICE_BYTES} of a notice"
    if refused is not None:
        return 0, refused.encode()
    try:
        return 200, await _read_capped(resp, MAX_NOTICE_BYTES, NOTICE_NAME)
    except CheckFailed as err:
        return 0, str(err).encode()


# httpx's defaults a check does without: each costs every request its bytes on the mirror's
# link. freshclam (libcurl) sends no Accept-Encoding either, so without it a mirror answers
# as it answers freshclam; any Content-Encoding is refused all the same (answer.py).
UNSENT = ("Accept", "Accept-Encoding", "Connection")


def new_client(timeout_s: float, max_connections: int) -> httpx.AsyncClient:
    """An HTTP client for checks: no redirects followed, no proxies from the environment, and
    no header but ``Host``, ``User-Agent: ClamAV-MirrorCheck`` and what a request adds."""
    client = httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(timeout_s),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=0),
        headers={"User-Agent": USER_AGENT},
    )
    for name in UNSENT:
        del client.headers[name]
    return client


async def _local_test(
    base_url: str, host_header: str, timeout_s: float
) -> tuple[int, str, str | None]:
    url = f"{base_url.rstrip('/')}/local_test"
    headers = {"Host": host_header}
    async with (
        new_client(timeout_s, 1) as client,
        client.stream("GET", url, headers=headers) as resp,
    ):
        if resp.status_code != 200:
            return resp.status_code, "", resp.headers.get("location")
        refused = _refused(resp)
        if refused:
            raise CheckFailed(f"/local_test {refused}")
        body = await _read_capped(resp, MAX_LOCAL_TEST_BYTES, "local_test")
        return 200, body.decode("utf-8", errors="replace"), None


def local_test(
    base_url: str, host_header: str, timeout_s: float = 10.0, deadline_s: float = 30.0
) -> tuple[int, str, str | None]:
    """GET /local_test with `Host: host_header` (at most `MAX_LOCAL_TEST_BYTES`, as stored,
    within `deadline_s` in all); return status, body, Location. Raise CheckFailed for an
    answer refused (encoding, framing, too long, too slow) and httpx.HTTPError for no answer."""

    async def bounded() -> tuple[int, str, str | None]:
        with trio.move_on_after(deadline_s):
            return await _local_test(base_url, host_header, timeout_s)
        raise CheckFailed(f"/local_test took longer than {deadline_s:g} s")

    return trio.run(bounded)


async def local_stats_status(
    client: httpx.AsyncClient, base_url: str, host_header: str
) -> tuple[int, str | None]:
    """GET /local_stats/ without credentials; return the status and Location. No byte of the
    body is read: the status is the answer (syncd.traffic.localstats)."""
    url = f"{base_url.rstrip('/')}/local_stats/"
    async with client.stream("GET", url, headers={"Host": host_header}) as resp:
        return resp.status_code, resp.headers.get("location")


async def local_stats_each(
    targets: Sequence[tuple[str, str]],
    *,
    timeout_s: float,
    deadline_s: float,
    concurrency: int,
    overall_s: float | None = None,
) -> dict[str, tuple[int | None, str | None, str | None]]:
    """Ask every (name, base URL) for /local_stats/ (`Host`: the name), at most `concurrency`
    at once, each within `deadline_s`, all within `overall_s`; return name -> (status,
    Location, error) for those answered or timed out (none for those never asked in time).
    Whatever asking one mirror raises that no adapter translated is that mirror's error
    ("internal error: Class: message"), never the others'."""
    found: dict[str, tuple[int | None, str | None, str | None]] = {}
    limit = trio.CapacityLimiter(max(1, concurrency))

    async def one(client: httpx.AsyncClient, name: str, base: str) -> None:
        async with limit:
            with trio.move_on_after(deadline_s):
                try:
                    status, where = await local_stats_status(client, base, name)
                    found[name] = (status, where, None)
                except (httpx.HTTPError, httpx.StreamError, httpx.InvalidURL, ValueError) as err:
                    # InvalidURL: an inventory URL httpx refuses (it is no HTTPError)
                    found[name] = (None, None, f"{type(err).__name__}: {str(err)[:200]}")
                except Exception as err:  # what no adapter translated: this mirror's alone
                    found[name] = (None, None, internal_error(err))
                return
            found[name] = (None, None, f"took longer than {deadline_s:g} s")

    with trio.move_on_after(overall_s if overall_s is not None else float("inf")):
        async with (
            new_client(timeout_s, max(1, concurrency)) as client,
            trio.open_nursery() as n,
        ):
            for name, base in targets:
                n.start_soon(one, client, name, base)
    return found


def local_stats(
    base_url: str, host_header: str, timeout_s: float = 10.0, deadline_s: float = 30.0
) -> tuple[int | None, str | None, str | None]:
    """GET /local_stats/ without credentials within `deadline_s`; return (status, Location,
    error)."""
    found = trio.run(
        lambda: local_stats_each(
            [(host_header, base_url)], timeout_s=timeout_s, deadline_s=deadline_s, concurrency=1
        )
    )
    return found[host_header]
