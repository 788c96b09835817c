"""The inventory of mirrors (TOML, one ``[[mirrors]]`` table per mirror): model, and parsing
with errors that name the file, the mirror and the field with a fix. Pure: text in, values
out. Edits of the text are `syncd.inventory.edits`'s.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pushwire.authorized_keys import AuthorizedKeysError, parse_public_key
from pushwire.maintenance import (
    MAX_AHEAD_S,
    MAX_REASON,
    Notice,
    NoticeError,
    check_window,
    clean_reason,
    format_time,
    parse_time,
)
from syncd.errors import SyncdError
from syncd.hints import did_you_mean
from syncd.inventory.addresses import ip_problem, mailbox_problem
from syncd.text import clean

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}\Z")
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}\Z")
_COUNTRY = re.compile(r"[A-Z]{2}\Z")

FIXES = {
    "name": "a host-like name such as clamav.example.org",
    "host": "the host name or IP address sshd listens on",
    "port": "an integer between 1 and 65535 (default 22)",
    "user": "the mirror's account, usually clamavdb",
    "country": "a two-letter ISO 3166 code in capitals, such as PL",
    "admins": 'a list such as ["Jane Doe <jane@example.org>"]',
    "notify": 'a list of addresses such as ["alerts@example.org"]',
    "host_keys": 'a non-empty list of OpenSSH public keys, such as ["ssh-ed25519 AAAA..."]; '
    "get one with ssh-keyscan and confirm it with the admin",
    "http": "the mirror's base URL such as http://clamav.example.org",
    "https": "the URL of the mirror's https, https://NAME with the name its certificate is for, "
    "such as https://clamav.example.org (a port after the name only in a lab), or leave it out",
    "active": "true or false",
    "pending": "true or false (true until the mirror's first successful publish)",
    "hub": "{ max_transfers = 20, weight = 1 } for a mirror whose rsync daemon serves its tree "
    "to other mirrors (a second wave), with a name of at most 64 characters",
    "allow_private_addresses": "true for a lab fleet on loopback or private addresses "
    "(at the top of the file, before the first [[mirrors]]), else leave it out",
    "hubs": "the names of hub mirrors this mirror's client lists in HUBS, "
    'such as ["hub.example.de"]',
    "maintenance": '{ start = "2026-03-01T09:00:00Z", end = "2026-03-01T11:00:00Z", '
    'reason = "new disks" } (syncd mirrors set NAME maintenance=FROM..UNTIL reason=...)',
}


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def host_problem(host: str) -> str | None:
    """Given a host name or address, return why a connection to it cannot be made, or None.
    The ssh and HTTP adapters call this before they resolve, and the inventory before it
    accepts a host: a name must survive the IDNA encoding that ``socket.getaddrinfo`` (and so
    asyncssh and trio) applies, which refuses an empty label such as ``mirror..example.org``."""
    if not host:
        return "empty"
    if _CONTROL.search(host) or any(c.isspace() for c in host):
        return "holds a control character or a space"
    if host.startswith("-"):
        return "starts with '-'"
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    try:
        host.encode("idna")
    except UnicodeError as err:
        reason = str(err.__cause__ or err).split("(")[-1].rstrip(")")
        return f"not a valid host name ({reason})"
    return None


def address_problem(address: str) -> str | None:
    """Given a mail address (``Name <a@b.org>`` or ``a@b.org``), return why it cannot head a
    mail, or None: a control character (a newline would inject a header), or anything but
    one addr-spec with a domain (see `syncd.inventory.addresses.parse_mailbox`)."""
    if not address.strip():
        return "empty"
    if _CONTROL.search(address):
        return "holds a control character (a newline, say)"
    return mailbox_problem(address)


def _checked_host(v: str) -> str:
    problem = host_problem(v)
    if problem:
        raise ValueError(f"not a host name or address: {v[:60]!r} {problem}")
    return v


HostName = Annotated[str, AfterValidator(_checked_host)]
"""A host name or address a connection can be made to (see host_problem)."""


def _checked_address(v: str) -> str:
    problem = address_problem(v)
    if problem:
        raise ValueError(f"{v[:60]!r} {problem}")
    return v


MailAddress = Annotated[str, AfterValidator(_checked_address)]
"""A mail address that can head a mail (see address_problem)."""


def checked_addresses(v: list[str]) -> list[str]:
    """Return `v` when every address in it can head a mail; raise ValueError naming the first
    that cannot."""
    for address in v:
        _checked_address(address)
    return v


class InventoryError(SyncdError, ValueError):
    """The inventory cannot be used; the message names file, mirror and field and the fix."""


class Hub(BaseModel):
    """A mirror that serves the release to a second wave of mirrors from its rsync daemon:
    how many of them it serves at once, and its share of the mirrors (on the scale of the
    ``[[sources]]`` weights of syncd.toml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_transfers: Annotated[int, Field(ge=1, le=10_000)] = 20
    weight: Annotated[int, Field(ge=1, le=10_000)] = 1


class Maintenance(BaseModel):
    """A maintenance window the team set (``syncd mirrors set NAME maintenance=FROM..UNTIL
    reason=...``, for a window announced by mail): RFC 3339 times, a one-line reason. What
    it does is `syncd.monitor.maintenance`'s."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str
    end: str
    reason: str = ""

    @field_validator("start", "end")
    @classmethod
    def _time(cls, v: str) -> str:
        try:
            return format_time(parse_time(v))
        except NoticeError as err:
            raise ValueError(str(err)) from None

    @field_validator("reason")
    @classmethod
    def _reason(cls, v: str) -> str:
        return clean(clean_reason(v), MAX_REASON)

    @model_validator(mode="after")
    def _window(self) -> Maintenance:
        try:
            check_window(parse_time(self.start), parse_time(self.end), max_s=MAX_AHEAD_S)
        except NoticeError as err:
            raise ValueError(str(err)) from None
        return self

    def notice(self) -> Notice:
        return Notice(parse_time(self.start), parse_time(self.end), self.reason)


class Mirror(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    host: HostName
    port: Annotated[int, Field(ge=1, le=65535)] = 22
    user: str = "clamavdb"
    country: str
    admins: list[str] = []
    notify: list[str] = []
    # registered but not yet pushed to successfully: host keys may still be missing (`syncd
    # mirrors check` / `trust` pin them), and it stays out of DNS until its first ok publish
    pending: bool = False
    host_keys: Annotated[list[str], Field(validate_default=True)] = []
    http: str | None = None
    # where the mirror serves https (freshclam 0.102+ fetches a bare DatabaseMirror NAME from
    # https://NAME): the monitor checks its certificate for this URL's host (syncd.monitor.certs)
    https: str | None = None
    active: bool = True
    hub: Hub | None = None  # this mirror's rsync daemon serves a second wave
    hubs: list[str] | None = None  # the hubs its client lists in HUBS (their mirror names)
    maintenance: Maintenance | None = None  # a window announced by mail

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("not a host-like name")
        return v

    @field_validator("hubs")
    @classmethod
    def _hubs(cls, v: list[str] | None) -> list[str] | None:
        for name in v or ():
            if not _NAME.match(name):
                raise ValueError(f"{name[:60]!r} is not a mirror's name")
        if v is not None and len(set(v)) != len(v):
            raise ValueError("a hub is listed twice")
        return v

    @field_validator("admins", "notify")
    @classmethod
    def _mail(cls, v: list[str]) -> list[str]:
        return checked_addresses(v)

    @field_validator("user")
    @classmethod
    def _user(cls, v: str) -> str:
        if not _USER.match(v):
            raise ValueError("not a Unix account name")
        return v

    @field_validator("country")
    @classmethod
    def _country(cls, v: str) -> str:
        if not _COUNTRY.match(v):
            raise ValueError("not a two-letter country code")
        return v

    @field_validator("host_keys")
    @classmethod
    def _host_keys(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if not v and not info.data.get("pending"):
            raise ValueError("no host key pinned")
        out = []
        for line in v:
            try:
                kind, blob, _ = parse_public_key(line)
            except AuthorizedKeysError as err:
                raise ValueError(f"{line[:40]!r} is not a public key ({err})") from None
            out.append(f"{kind} {blob}")
        return out

    @field_validator("http")
    @classmethod
    def _http(cls, v: str | None) -> str | None:
        if v is not None and (_CONTROL.search(v) or not re.match(r"https?://[^\s/]+(/\S*)?\Z", v)):
            raise ValueError("not an http(s) URL")
        if v is not None:
            try:
                host = urlsplit(v).hostname or ""
            except ValueError as err:
                raise ValueError(f"not an http(s) URL ({err})") from None
            problem = host_problem(host)
            if problem:
                raise ValueError(f"its host {host[:60]!r} {problem}")
        return v.rstrip("/") if v else v

    @field_validator("https")
    @classmethod
    def _https(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if _CONTROL.search(v) or not _HTTPS.match(v):
            raise ValueError("not https://NAME[:PORT] (no path)")
        try:
            parts = urlsplit(v)
            host, port = parts.hostname or "", parts.port
        except ValueError as err:
            raise ValueError(f"not https://NAME[:PORT] ({err})") from None
        if port == 0:
            raise ValueError("port 0 is no port")
        problem = host_problem(host)
        if problem:
            raise ValueError(f"its host {host[:60]!r} {problem}")
        return v.rstrip("/")


_HTTPS = re.compile(r"https://(\[[0-9A-Fa-f:.]+\]|[^\s/:@?#\[\]]+)(:[0-9]{1,5})?/?\Z")


class Inventory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # a lab fleet (loopback, private ranges): mirrors' addresses need not be global
    allow_private_addresses: bool = False
    mirrors: list[Mirror] = []

    def get(self, name: str) -> Mirror | None:
        return next((m for m in self.mirrors if m.name == name), None)

    def named(self, name: str) -> Mirror:
        """Return mirror `name`; raise InventoryError when there is none."""
        mirror = self.get(name)
        if mirror is None:
            hint = did_you_mean(name, (m.name for m in self.mirrors))
            raise InventoryError(f"no mirror named {name!r}: {hint}see 'syncd mirrors list'")
        return mirror

    def active(self) -> list[Mirror]:
        """Mirrors to push to: enabled, with a pinned host key (pending ones included)."""
        return [m for m in self.mirrors if m.active and m.host_keys]


def _explain(err: ValidationError, origin: str, raw: dict[str, Any]) -> str:
    errors = err.errors()
    # an unknown key first: a misspelt key also makes the real one "missing"
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = list(first["loc"])
    where = "(top level)"
    field = ""
    if len(loc) >= 2 and loc[0] == "mirrors" and isinstance(loc[1], int):
        index = loc[1]
        mirrors = raw.get("mirrors")
        name = None
        if isinstance(mirrors, list) and index < len(mirrors) and isinstance(mirrors[index], dict):
            name = mirrors[index].get("name")
        where = f"mirror {name!r}" if isinstance(name, str) else f"mirror #{index + 1}"
        field = ".".join(str(part) for part in loc[2:])  # a nested table's: hub.weight
    elif loc:
        field = str(loc[0])
    kind = first["type"]
    top = field.split(".")[0]
    if kind == "extra_forbidden":
        nested: dict[str, type[BaseModel]] = {"hub": Hub, "maintenance": Maintenance}
        model = nested.get(top, Mirror) if "." in field else Mirror
        names = list((Inventory if where == "(top level)" else model).model_fields)
        hint = did_you_mean(field.split(".")[-1], names)
        fix = f"{hint}rename or remove it" if hint else "remove it"
        return f"{origin}: {where}: unknown key {field!r}: {fix} (known keys: {', '.join(names)})"
    if kind == "missing":
        return f"{origin}: {where}: missing key {field!r}: add it ({FIXES.get(field, 'required')})"
    message = first["msg"].removeprefix("Value error, ")
    fix = FIXES.get(top, "see docs/publishing.md")
    return f"{origin}: {where}: field {field!r}: {message}: use {fix}"


def parse_inventory(text: str, origin: str = "inventory.toml") -> Inventory:
    """Given the inventory's TOML text, return it; raise InventoryError naming the problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InventoryError(f"{origin}: not valid TOML: {err}") from None
    try:
        inventory = Inventory.model_validate(raw)
    except ValidationError as err:
        raise InventoryError(_explain(err, origin, raw)) from None
    seen: set[str] = set()
    for mirror in inventory.mirrors:
        if mirror.name in seen:
            raise InventoryError(
                f"{origin}: mirror {mirror.name!r}: field 'name': defined twice: "
                "give each mirror a unique name"
            )
        seen.add(mirror.name)
    _check_addresses(inventory, origin)
    _check_hubs(inventory, origin)
    return inventory


def _check_addresses(inventory: Inventory, origin: str) -> None:
    """Every mirror's address (its host and its URL's host, when IP addresses) is a global
    unicast address, or a private one in a lab (see `syncd.inventory.addresses.ip_problem`)."""
    lab = inventory.allow_private_addresses
    for mirror in inventory.mirrors:
        url_host = (urlsplit(mirror.http).hostname or "") if mirror.http else ""
        tls_host = (urlsplit(mirror.https).hostname or "") if mirror.https else ""
        for field, host in (("host", mirror.host), ("http", url_host), ("https", tls_host)):
            problem = ip_problem(host, allow_private=lab)
            if problem:
                raise InventoryError(
                    f"{origin}: mirror {mirror.name!r}: field {field!r}: {host[:60]!r} {problem}"
                )


HUB_NAME_MAX = 64  # a hub's name goes into pushes (``source=NAME``) and the clients' HUBS


def _check_hubs(inventory: Inventory, origin: str) -> None:
    """Every hub a mirror lists is another mirror of the inventory that is a hub."""
    hubs = {m.name for m in inventory.mirrors if m.hub is not None}
    for mirror in inventory.mirrors:
        if mirror.hub is not None and len(mirror.name) > HUB_NAME_MAX:
            raise InventoryError(
                f"{origin}: mirror {mirror.name[:60]!r}: field 'hub': a hub's name has at most "
                f"{HUB_NAME_MAX} characters: rename the mirror or remove its hub table"
            )
        for name in mirror.hubs or ():
            if name == mirror.name or name not in hubs:
                what = "itself" if name == mirror.name else "not a hub of this inventory"
                raise InventoryError(
                    f"{origin}: mirror {mirror.name!r}: field 'hubs': {name!r} is {what}: "
                    "list only other mirrors that have a hub table"
                )


def with_mirror(inventory: Inventory, mirror: Mirror) -> Inventory:
    """Return `inventory` with `mirror` added, or replacing the mirror of the same name."""
    mirrors = [m for m in inventory.mirrors if m.name != mirror.name]
    if len(mirrors) == len(inventory.mirrors):
        mirrors.append(mirror)
    else:
        mirrors = [mirror if m.name == mirror.name else m for m in inventory.mirrors]
    return inventory.model_copy(update={"mirrors": mirrors})


def without_mirror(inventory: Inventory, name: str) -> Inventory:
    """Return `inventory` without the mirror `name`; raise InventoryError when absent."""
    inventory.named(name)
    return inventory.model_copy(
        update={"mirrors": [m for m in inventory.mirrors if m.name != name]}
    )


def make_mirror(fields: dict[str, object]) -> Mirror:
    """Return a validated Mirror from `fields`; raise InventoryError naming the bad field."""
    name = fields.get("name", "?")
    try:
        return Mirror.model_validate(fields)
    except ValidationError as err:
        first = err.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        raise InventoryError(
            f"mirror {name!r}: field {field!r}: {first['msg'].removeprefix('Value error, ')}: "
            f"use {FIXES.get(field, 'a valid value')}"
        ) from None


def updated(inventory: Inventory, name: str, **changes: object) -> Inventory:
    """Return `inventory` with the fields of mirror `name` changed, validated again. A
    ``hub`` change that is a mapping changes the fields it gives of the mirror's hub table
    (made with the defaults when it has none)."""
    mirror = inventory.named(name)
    hub = changes.get("hub")
    if isinstance(hub, dict):
        changes = {**changes, "hub": {**(mirror.hub.model_dump() if mirror.hub else {}), **hub}}
    return with_mirror(inventory, make_mirror({**mirror.model_dump(), **changes}))
