"""Talk to the authoritative DNS server: read what it holds, send RFC 2136 updates signed
with TSIG (dnspython). Only this module imports dnspython's network parts."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update
import dns.xfr
import dns.zone

from syncd.dns.plan import Change, pool_addresses
from syncd.dns.steps import HeldSet
from syncd.errors import SyncdError


class DnsUpdateError(SyncdError, RuntimeError):
    """The server refused or did not answer; the message names the cause and the fix."""

    def __init__(self, message: str, *, retryable: bool, key_rejected: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        # the server does not know the key: with db.local by region, no view answers to it
        self.key_rejected = key_rejected


@dataclass(frozen=True)
class DnsServer:
    host: str
    port: int
    zone: str
    key_name: str
    key_secret: str = field(repr=False)
    key_algorithm: str = "hmac-sha256"
    timeout_s: float = 5.0
    ttl: int = 300
    # db.local by region: names stay relative to `zone`, updates go to this zone (the view's
    # db.local zone), and reads are signed too, since the key is what selects the view
    update_zone: str | None = None
    sign_queries: bool = False

    def keyring(self) -> dict[dns.name.Name, dns.tsig.Key]:
        return dns.tsigkeyring.from_text({self.key_name: (self.key_algorithm, self.key_secret)})


def _absolute(server: DnsServer, relative: str) -> dns.name.Name:
    return dns.name.from_text(relative, origin=dns.name.from_text(server.zone))


def _ask(
    server: DnsServer, query: dns.message.Message, host: str, port: int
) -> dns.message.Message:
    if server.sign_queries:
        query.use_tsig(
            server.keyring(),
            keyname=dns.name.from_text(server.key_name),
            algorithm=server.key_algorithm,
        )
    return _exchange(server, query, host, port, "read")


TSIG_REJECTED = (dns.tsig.PeerBadKey, dns.tsig.PeerBadSignature, dns.tsig.PeerBadTime)
# per kind of exchange: what follows "the server rejected TSIG key K (why)", and what a server
# that does not answer is said to have failed
FIXES = {
    "read": (
        " on a read: check the view keys named.conf includes (syncd dns render --named-conf)",
        "cannot query {where}",
    ),
    "update": (
        ": check the key name, algorithm and secret in [dns] of syncd.toml",
        "no answer from {where} to the update",
    ),
}


def _exchange(
    server: DnsServer, message: dns.message.Message, host: str, port: int, kind: str
) -> dns.message.Message:
    """Send `message` over TCP and return the answer; translate what goes wrong into a
    DnsUpdateError: a rejected key is final, no answer is worth a retry."""
    rejected, silent = FIXES[kind]
    try:
        return dns.query.tcp(message, host, port=port, timeout=server.timeout_s)
    except TSIG_REJECTED as err:
        raise DnsUpdateError(
            f"the server rejected TSIG key {server.key_name!r} ({type(err).__name__}){rejected}",
            retryable=False,
            key_rejected=True,
        ) from None
    except (OSError, dns.exception.DNSException) as err:
        where = f"{host}:{port}"
        raise DnsUpdateError(f"{silent.format(where=where)}: {err}", retryable=True) from None


def read_held(server: DnsServer, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], HeldSet]:
    """Return (relative name, type) -> the rdata texts (sorted) the server holds now, with
    their TTL."""
    held: dict[tuple[str, str], HeldSet] = {}
    for name, rdtype in keys:
        query = dns.message.make_query(_absolute(server, name), rdtype)
        answer = _ask(server, query, server.host, server.port)
        rcode = dns.rcode.to_text(answer.rcode())
        if rcode not in ("NOERROR", "NXDOMAIN"):  # "holds nothing" only when it says so
            raise DnsUpdateError(
                f"{server.host}:{server.port} answered {rcode} for {name} {rdtype}: check that "
                f"it serves {server.update_zone or server.zone} to syncd (allow-query, the view's "
                "key), and its log",
                retryable=rcode == "SERVFAIL",
            )
        texts: list[str] = []
        ttl = 0
        for rrset in answer.answer:
            if rrset.rdtype == dns.rdatatype.from_text(rdtype):
                texts.extend(r.to_text() for r in rrset)
                ttl = max(ttl, rrset.ttl)
        held[(name, rdtype)] = HeldSet(tuple(sorted(texts)), ttl)
    return held


def read_records(
    server: DnsServer, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, ...]]:
    """Return (relative name, type) -> sorted rdata texts the server holds now."""
    return {k: h.values for k, h in read_held(server, keys).items()}


def serial(server: DnsServer, host: str | None = None, port: int | None = None) -> int:
    """The SOA serial of the zone updates go to (a view's db.local zone, through its key),
    as the server at `host`:`port` (default: the primary) serves it now."""
    zone = dns.name.from_text(server.update_zone or server.zone)
    answer = _ask(
        server,
        dns.message.make_query(zone, "SOA"),
        host or server.host,
        server.port if port is None else port,
    )
    for rrset in answer.answer:
        if rrset.rdtype == dns.rdatatype.SOA:
            return int(rrset[0].serial)
    raise DnsUpdateError(
        f"{host or server.host}:{server.port if port is None else port} answered no SOA for "
        f"{zone}: is it authoritative for the zone?",
        retryable=True,
    )


def names_held(server: DnsServer) -> set[str] | None:
    """The names (relative) the zone holds, read by a zone transfer signed with the update key;
    None when the server refuses the transfer (allow-transfer does not list the key) or the
    key."""
    try:
        zone = dns.zone.Zone(server.zone)
        query, _ = dns.xfr.make_query(
            zone,
            serial=None,  # AXFR: the whole zone
            keyring=server.keyring(),
            keyname=dns.name.from_text(server.key_name),
            keyalgorithm=server.key_algorithm,
        )
        dns.query.inbound_xfr(
            server.host,
            zone,
            query,
            port=server.port,
            timeout=server.timeout_s,
            lifetime=server.timeout_s * 4,
        )
    except (
        dns.xfr.TransferError,
        dns.exception.FormError,
        *TSIG_REJECTED,
    ):  # refused, or the key is wrong: the update itself says so, with the fix
        return None
    except (OSError, dns.exception.DNSException) as err:
        raise DnsUpdateError(
            f"cannot transfer {server.zone} from {server.host}:{server.port}: {err}",
            retryable=True,
        ) from None
    return {n.to_text() for n in zone.nodes if n.to_text() != "@"}


def send_update(server: DnsServer, changes: Sequence[Change]) -> int:
    """Send `changes` as one signed update; return the number of records touched."""
    if not changes:
        return 0
    update = dns.update.UpdateMessage(
        server.update_zone or server.zone,
        keyring=server.keyring(),
        keyname=dns.name.from_text(server.key_name),
        keyalgorithm=server.key_algorithm,
    )
    touched = 0
    try:
        for change in changes:
            name = _absolute(server, change.name)
            for rdata in change.remove:
                update.delete(name, change.rdtype, rdata)
            if change.add:
                update.add(name, change.ttl or server.ttl, change.rdtype, *change.add)
            touched += len(change.add) + len(change.remove)
    except (ValueError, dns.exception.DNSException) as err:
        raise DnsUpdateError(
            f"cannot build the update ({type(err).__name__}: {err}): a record's value is not "
            "valid for its type",
            retryable=False,
        ) from None
    response = _exchange(server, update, server.host, server.port, "update")
    rcode = response.rcode()
    if rcode != dns.rcode.NOERROR:
        text = dns.rcode.to_text(rcode)
        hint = {
            "NOTAUTH": f"the server is not authoritative for {server.zone} or refused the key",
            "REFUSED": f"the server does not allow updates to {server.update_zone or server.zone} "
            "with this key, or the zone is frozen ('rndc thaw' it)",
            "NOTZONE": f"a name lies outside the zone {server.zone}",
        }.get(text, "see the server's log")
        raise DnsUpdateError(f"update refused with {text}: {hint}", retryable=text in {"SERVFAIL"})
    return touched


def _addresses(host: str) -> tuple[str, ...]:
    try:
        return (str(ipaddress.ip_address(host)),)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return ()
    return tuple(sorted({str(i[4][0]) for i in infos}))


def rotation_addresses(
    host: str, *, allow_private: bool = False
) -> tuple[tuple[str, ...], list[str]]:
    """`host`'s addresses that may go into a pool, and a note for each that may not
    (`syncd.dns.plan.pool_addresses`; `allow_private`: the inventory's lab setting)."""
    return pool_addresses(_addresses(host), allow_private=allow_private)
