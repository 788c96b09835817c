"""A mirror from its registration mail to its first publish: add it as pending, probe it before
it goes live (vhost names over HTTP, the host key over ssh), pin only the key its admin sent,
and make it a regular mirror after its first successful publish. The judgements are pure
(`syncd.inventory.golive`, `syncd.inventory.registration`); this module probes, and edits the
inventory in place (comments and layout kept). Used by ``syncd mirrors`` and ``syncd publish``."""

from __future__ import annotations

import functools
import time
from collections.abc import Collection
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import trio

from syncd.files import edit_inventory, read_inventory
from syncd.httpcheck.client import CheckFailed, local_stats, local_test
from syncd.httpcheck.tls import certificate
from syncd.inventory.edits import text_updated, text_with_mirror
from syncd.inventory.golive import (
    Item,
    TrustError,
    check_fingerprint,
    judge_certificate,
    judge_host_key,
    judge_local_stats,
    judge_local_test,
    vhost_names,
)
from syncd.inventory.model import InventoryError, Mirror, make_mirror
from syncd.inventory.registration import Registration, parse_mail
from syncd.monitor.certs import CertSeen, judge_cert
from syncd.publish.errors import PushError
from syncd.publish.ssh import fetch_host_key
from syncd.traffic.localstats import judge


def pending_mirror(reg: Registration) -> Mirror:
    """The inventory entry of a registered mirror: pending, no host key pinned yet."""
    return make_mirror(
        {
            "name": reg.name,
            "host": reg.address,
            "country": reg.country,
            "admins": [reg.admin],
            "notify": [reg.notify] if reg.notify else [],
            "pending": True,
            "host_keys": [],
            "http": f"http://{reg.name}",
            "active": True,
        }
    )


def register(inventory: Path, mail: bytes) -> list[Registration]:
    """Add the mirrors `mail` announces to `inventory` (created when missing) as pending;
    return them. Raise RegistrationError, or InventoryError when one is already there (then
    nothing is added)."""
    known = read_inventory(inventory) if inventory.exists() else None
    lab = known is not None and known.allow_private_addresses
    registrations = parse_mail(mail, allow_private=lab)
    mirrors = [pending_mirror(reg) for reg in registrations]
    for m in mirrors:
        if known is not None and known.get(m.name) is not None:
            raise InventoryError(f"mirror {m.name!r} is already in the inventory: nothing added")

    def add_all(text: str) -> str:
        return functools.reduce(lambda t, m: text_with_mirror(t, m, str(inventory)), mirrors, text)

    edit_inventory(inventory, add_all, create=True)
    return registrations


def check(
    inventory: Path, name: str, http_url: str | None = None, cafile: str | None = None
) -> tuple[Mirror, list[Item]]:
    """Probe mirror `name` before it goes live; return it and the checklist: its vhost answers
    /local_test with 'Success' for every name freshclam and the team use, with no redirect
    (at `http_url`, else its inventory URL); with an https URL, its certificate is one
    freshclam accepts (verified against `cafile`, else the system's store); its /local_stats/,
    if any, refuses access without credentials (a warning otherwise); its sshd answers and
    offers a host key."""
    mirror = read_inventory(inventory).named(name)
    base = http_url or mirror.http or f"http://{mirror.host}"
    items = []
    for host in vhost_names(mirror.name):
        try:
            status, body, location = local_test(base, host)
            items.append(judge_local_test(host, status, body, location))
        except httpx.HTTPError as err:
            items.append(judge_local_test(host, None, "", None, f"{type(err).__name__}: {err}"))
        except CheckFailed as err:
            items.append(judge_local_test(host, None, "", None, str(err)))
    if mirror.https:
        items.append(_certificate(mirror.name, mirror.https, cafile))
    items.append(_local_stats(base, mirror.name))
    try:
        items.append(judge_host_key(fetch_host_key(mirror.host, mirror.port), None))
    except PushError as err:
        items.append(judge_host_key(None, f"{mirror.host}:{mirror.port}: {err}"))
    return mirror, items


def _certificate(name: str, url: str, cafile: str | None) -> Item:
    """One TLS handshake with the mirror's https, judged as the monitor judges it."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    at = time.time()
    answer = trio.run(lambda: certificate(host, port, cafile=cafile))
    seen = CertSeen(
        name, host, port, at, answer.cert, answer.verify_code, answer.verify_error, answer.failure
    )
    return judge_certificate(judge_cert(seen, at), at)


def _local_stats(base: str, name: str) -> Item:
    """The guide's /local_stats/, asked for without credentials (none is ever sent)."""
    status, location, error = local_stats(base, name)
    return judge_local_stats(judge(status, location, error))


def trust(inventory: Path, name: str, fingerprint: str) -> str:
    """Pin the host key mirror `name` offers now, only if its fingerprint is `fingerprint`
    (what its admin sent, out of band); return the key. Raise TrustError (nothing pinned)
    when it is another key or none is offered."""
    mirror = read_inventory(inventory).named(name)
    try:
        key = check_fingerprint(fetch_host_key(mirror.host, mirror.port), fingerprint)
    except (TrustError, PushError) as err:
        raise TrustError(f"{name}: {err}") from None
    edit_inventory(inventory, lambda t: text_updated(t, name, str(inventory), host_keys=[key]))
    return key


def promote_pending(inventory: Path, ok: Collection[str]) -> list[str]:
    """A pending mirror's first successful publish makes it a regular active mirror: mark
    every pending mirror in `ok` so; return their names."""
    promoted = [m.name for m in read_inventory(inventory).mirrors if m.pending and m.name in ok]
    if promoted:

        def promote(text: str) -> str:
            for name in promoted:
                text = text_updated(text, name, str(inventory), pending=False)
            return text

        edit_inventory(inventory, promote)
    return promoted
