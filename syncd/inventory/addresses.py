"""Addresses that come from outside (registration mails, the inventory, ``syncd mirrors set``):
a mirror's IP address, which ends up in the DNS pools, and the admins' and notification mail
addresses, which end up in mail headers. Pure: text in, a checked value (or why not) out.

A mirror's address is a global unicast IPv4 or IPv6 address. Never accepted: a zone id
(``fe80::1%lo``), the unspecified address (``0.0.0.0``, ``::``), multicast, link-local, reserved,
and IPv4-mapped IPv6 (``::ffff:127.0.0.1``: write the IPv4 address). Loopback, private and the
other non-global ranges (documentation, shared, benchmarking) only in a lab: the inventory's
top-level ``allow_private_addresses = true``.

A mail address is an addr-spec with a domain (``local@example.org``), optionally after a
display name (``Jane Doe <jane@example.org>``); nothing else (no groups, no lists, no
comments, no quoted local part). A header is only ever rebuilt from the parsed address and a
cleaned display name (`Mailbox.text`), so no display name can add a recipient.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

ZONE_ID = "has a zone id ('%...'): write the address alone"


IP = ipaddress.IPv4Address | ipaddress.IPv6Address

# never a mirror's address, lab or not: (test, why and the fix), in the order they are tried
_NEVER: tuple[tuple[Callable[[IP], bool], str], ...] = (
    (
        lambda ip: isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None,
        "is an IPv4-mapped IPv6 address: write the IPv4 address instead",
    ),
    (lambda ip: ip.is_unspecified, "is the unspecified address: write the mirror's own address"),
    (lambda ip: ip.is_multicast, "is a multicast address: write the mirror's unicast address"),
    (lambda ip: ip.is_link_local, "is a link-local address: write the mirror's global address"),
    # ::1 lies in the reserved ::/8 and is a loopback address like 127.0.0.1
    (
        lambda ip: ip.is_reserved and not ip.is_loopback,
        "is a reserved address: write the mirror's global address",
    ),
)
LAB_HINT = "a lab fleet sets allow_private_addresses = true at the top of the inventory"


def ip_problem(text: str, *, allow_private: bool = False) -> str | None:
    """Given an IP address as written, return why it cannot be a mirror's address, or None
    (also None when `text` is not an IP address at all: a host name is not this check's)."""
    if "%" in text:
        return ZONE_ID
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    problem = next((why for test, why in _NEVER if test(ip)), None)
    if problem or allow_private or ip.is_global:
        return problem
    what = "a loopback" if ip.is_loopback else "a private or otherwise non-global"
    return f"is {what} address: write the mirror's global address ({LAB_HINT})"


# RFC 5322 dot-atom (no quoted local part, no comments), ASCII; a domain of at least two
# labels of letters, digits and hyphens, the last of letters (no address literal, no
# single-label domain such as ``localhost``)
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*\Z")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)+[A-Za-z]{{2,63}}\Z")
_ANGLED = re.compile(r"(?P<name>[^<>]*)<(?P<addr>[^<>]*)>\Z")
NAME_MAX = 64


@dataclass(frozen=True)
class Mailbox:
    """A parsed mail address: its cleaned display name ("" when none) and its addr-spec."""

    name: str
    addr: str

    @property
    def local(self) -> str:
        return self.addr.rpartition("@")[0]

    @property
    def domain(self) -> str:
        return self.addr.rpartition("@")[2]

    @property
    def text(self) -> str:
        """``Name <addr>`` (or the bare addr-spec), safe to write into a header as it is."""
        return f"{self.name} <{self.addr}>" if self.name else self.addr


def addr_spec_problem(addr: str) -> str | None:
    """Given an addr-spec (``local@domain``), return why it is not one, or None."""
    local, at, domain = addr.rpartition("@")
    if not at:
        return "has no '@': write e.g. jane@example.org"
    if not local:
        return "has nothing before the '@': write e.g. jane@example.org"
    if not domain:
        return "has no domain after the '@': write e.g. jane@example.org"
    if len(local) > 64 or not _LOCAL.match(local):
        return f"has a local part {local[:40]!r} that is not a plain mailbox name"
    if len(domain) > 253 or not _DOMAIN.match(domain):
        return f"has a domain {domain[:60]!r} that is not a host name such as example.org"
    return None


def clean_name(text: str) -> str:
    """Return a display name that cannot be read as anything else in a header: letters,
    digits, marks, spaces and ``.'-`` kept (no quote, comma, ``@``, angle bracket, control or
    format character), runs of spaces collapsed, at most NAME_MAX characters."""
    kept = []
    for c in text:
        cat = unicodedata.category(c)
        ok = cat[0] in "LMN" or c in ".'-"
        kept.append(c if ok else " ")
    return " ".join("".join(kept).split())[:NAME_MAX].strip()


def _parsed(text: str) -> Mailbox | str:
    if len(text) > 320:
        return "is longer than 320 characters"
    stripped = text.strip()
    m = _ANGLED.match(stripped)
    name, addr = (m["name"], m["addr"].strip()) if m else ("", stripped)
    if not m and any(c in stripped for c in '<>,;:"() \t'):
        return "is not one mail address: write 'Name <jane@example.org>' or jane@example.org"
    problem = addr_spec_problem(addr)
    return problem or Mailbox(clean_name(name.strip().strip('"')), addr)


def parse_mailbox(text: str) -> Mailbox:
    """Given ``addr`` or ``Display Name <addr>``, return the Mailbox; raise ValueError saying
    what is wrong and how to write it."""
    parsed = _parsed(text)
    if isinstance(parsed, str):
        raise ValueError(f"{text[:60]!r} {parsed}")  # noqa: TRY004 (a bad value, not type)
    return parsed


def mailbox_problem(text: str) -> str | None:
    """Given a mail address as written, return why it is not one (see parse_mailbox), or None."""
    parsed = _parsed(text)
    return parsed if isinstance(parsed, str) else None
