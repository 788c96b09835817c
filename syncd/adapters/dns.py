"""Talk to the authoritative DNS server: read what it holds, send RFC 2136 updates signed
with TSIG (dnspython). Only this module imports dnspython's network parts."""

from __future__ import annotations

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

from syncd.core.dnsplan import Change
from syncd.core.errors import SyncdError


class DnsUpdateError(SyncdError, RuntimeError):
    """The server refused or did not answer; the message names the cause and the fix."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


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


def read_records(
    server: DnsServer, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, ...]]:
    """Return (relative name, type) -> sorted rdata texts the server holds now."""
    held: dict[tuple[str, str], tuple[str, ...]] = {}
    for name, rdtype in keys:
        query = dns.message.make_query(_absolute(server, name), rdtype)
        if server.sign_queries:
            query.use_tsig(
                server.keyring(),
                keyname=dns.name.from_text(server.key_name),
                algorithm=server.key_algorithm,
            )
        try:
            answer = dns.query.tcp(query, server.host, port=server.port, timeout=server.timeout_s)
        except (dns.tsig.PeerBadKey, dns.tsig.PeerBadSignature, dns.tsig.PeerBadTime) as err:
            raise DnsUpdateError(
                f"the server rejected TSIG key {server.key_name!r} ({type(err).__name__}) on a "
                "read: check the view keys named.conf includes (syncd dns render --named-conf)",
                retryable=False,
            ) from None
        except (OSError, dns.exception.DNSException) as err:
            raise DnsUpdateError(
                f"cannot query {server.host}:{server.port}: {err}", retryable=True
            ) from None
        texts: list[str] = []
        for rrset in answer.answer:
            if rrset.rdtype == dns.rdatatype.from_text(rdtype):
                texts.extend(r.to_text() for r in rrset)
        held[(name, rdtype)] = tuple(sorted(texts))
    return held


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
    for change in changes:
        name = _absolute(server, change.name)
        for rdata in change.remove:
            update.delete(name, change.rdtype, rdata)
        if change.add:
            update.add(name, server.ttl, change.rdtype, *change.add)
        touched += len(change.add) + len(change.remove)
    try:
        response = dns.query.tcp(update, server.host, port=server.port, timeout=server.timeout_s)
    except (dns.tsig.PeerBadKey, dns.tsig.PeerBadSignature, dns.tsig.PeerBadTime) as err:
        raise DnsUpdateError(
            f"the server rejected TSIG key {server.key_name!r} ({type(err).__name__}): check the "
            "key name, algorithm and secret in [dns] of syncd.toml",
            retryable=False,
        ) from None
    except (OSError, dns.exception.DNSException) as err:
        raise DnsUpdateError(
            f"no answer from {server.host}:{server.port} to the update: {err}", retryable=True
        ) from None
    rcode = response.rcode()
    if rcode != dns.rcode.NOERROR:
        text = dns.rcode.to_text(rcode)
        hint = {
            "NOTAUTH": f"the server is not authoritative for {server.zone} or refused the key",
            "REFUSED": f"the server does not allow updates to {server.zone} with this key",
            "NOTZONE": f"a name lies outside the zone {server.zone}",
        }.get(text, "see the server's log")
        raise DnsUpdateError(f"update refused with {text}: {hint}", retryable=text in {"SERVFAIL"})
    return touched
