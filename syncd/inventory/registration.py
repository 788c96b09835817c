"""Mirror registration mails, in the template the old guide asked admins to send:

``clamav.foo.com ip address: 1.2.3.4 country: Poland admin: John Doe <john@foo.com>``
optionally followed by `` || <alerts@foo.com>`` for a different notification address.
Pure: the mail's text in, registrations (or one clear error) out.
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
import re
from dataclasses import dataclass
from email.message import EmailMessage

from pushwire.maintenance import NoticeError, clean_reason, format_time, parse_time
from syncd.errors import SyncdError
from syncd.inventory.addresses import ip_problem, mailbox_problem, parse_mailbox
from syncd.inventory.countries import lookup

TEMPLATE = (
    "<mirror name> ip address: <ip> country: <country> admin: <Full Name> <email>"
    " [|| <notify email>]"
)
_LINE = re.compile(
    r"^\s*(?P<name>\S+)\s+ip\s+address:\s*(?P<ip>\S+)\s+country:\s*(?P<country>.+?)\s+"
    r"admin:\s*(?P<admin>[^<>|]*<[^<>]*>)\s*(?:\|\|\s*(?P<notify><[^<>]*>))?\s*$",
    re.IGNORECASE,
)
_HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\Z"
)
MAX_MAIL_BYTES = 256 * 1024
MAX_MULTIPARTS = 32
_MULTIPART = re.compile(rb"^content-type:\s*multipart/", re.IGNORECASE | re.MULTILINE)


class RegistrationError(SyncdError, ValueError):
    """The mail does not hold a usable registration; the message says what and how to fix."""


@dataclass(frozen=True)
class Registration:
    name: str
    address: str
    country: str  # ISO 3166-1 alpha-2, upper case
    admin_name: str
    admin_email: str
    notify: str | None

    @property
    def admin(self) -> str:
        return f"{self.admin_name} <{self.admin_email}>"


def country_code(text: str) -> str:
    """Return the ISO alpha-2 code for a country name or code; raise when unknown."""
    cleaned = text.strip().strip(".")
    code = lookup(cleaned)
    if code is not None:
        return code
    raise RegistrationError(
        f"country {cleaned!r} is not a country name or ISO code: write e.g. 'Poland' or 'PL'"
    )


def _email(text: str, what: str) -> tuple[str, str]:
    """The cleaned display name and the addr-spec of `text` (see
    `syncd.inventory.addresses.parse_mailbox`: a display name never adds a recipient)."""
    problem = mailbox_problem(text.strip())
    if problem:
        raise RegistrationError(
            f"{what} {text.strip()[:80]!r} {problem}: write 'Name <jane@example.org>'"
        )
    box = parse_mailbox(text.strip())
    return box.name, box.addr


def parse_line(line: str, *, allow_private: bool = False) -> Registration:
    """Parse one registration line; raise RegistrationError naming the field at fault. The
    address must be global unicast unless `allow_private` (a lab inventory's setting)."""
    m = _LINE.match(line)
    if not m:
        raise RegistrationError(f"not a registration line: expected {TEMPLATE!r}")
    name = m["name"].lower().rstrip(".")
    if not _HOSTNAME.match(name):
        raise RegistrationError(
            f"mirror name {m['name']!r} is not a host name such as clamav.foo.com"
        )
    problem = ip_problem(m["ip"], allow_private=allow_private)
    if problem:
        raise RegistrationError(f"ip address {m['ip'][:60]!r} {problem}")
    try:
        address = str(ipaddress.ip_address(m["ip"]))
    except ValueError:
        raise RegistrationError(f"ip address {m['ip']!r} is not an IPv4 or IPv6 address") from None
    admin_name, admin_email = _email(m["admin"], "admin")
    if not admin_name:
        raise RegistrationError("admin has no name: write 'admin: Full Name <a@b.org>'")
    notify = _email(m["notify"], "notify address")[1] if m["notify"] else None
    return Registration(name, address, country_code(m["country"]), admin_name, admin_email, notify)


def _part_text(part: EmailMessage) -> str:
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset, a broken transfer encoding
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else ""


def mail_text(mail: bytes | str) -> str:
    """Given a mail as it arrived (headers and body; or just the text, with no headers),
    return the text of its plain-text parts, transfer encodings (quoted-printable, base64)
    and charsets undone (Python's email package, default policy)."""
    raw = mail.encode("utf-8", "surrogatepass") if isinstance(mail, str) else mail
    if len(raw) > MAX_MAIL_BYTES:
        raise RegistrationError(
            f"mail larger than {MAX_MAIL_BYTES // 1024} KiB: send the line alone"
        )
    # Python's email parser recurses once per nested multipart: a few KiB of nesting would
    # be a RecursionError. Every multipart is counted, nested or not (an upper bound).
    if len(_MULTIPART.findall(raw)) > MAX_MULTIPARTS:
        raise RegistrationError(
            f"mail has more than {MAX_MULTIPARTS} multipart sections: "
            "send the registration line in a plain-text mail"
        )
    try:
        message = email.message_from_bytes(raw, _class=EmailMessage, policy=email.policy.default)
        parts = [p for p in message.walk() if p.get_content_type() == "text/plain"]
        return "\n".join(_part_text(p) for p in parts)
    except RecursionError:  # a header's comments nested thousands deep, say
        raise RegistrationError(
            "mail too deeply nested to read: send the registration line in a plain-text mail"
        ) from None


def parse_mail(mail: bytes | str, *, allow_private: bool = False) -> list[Registration]:
    """Return every registration in a mail (see `mail_text`; other lines are ignored;
    `allow_private` as for `parse_line`)."""
    text = mail_text(mail)
    candidates = [ln for ln in text.splitlines() if re.search(r"ip\s+address:", ln, re.I)]
    if not candidates:
        raise RegistrationError(f"no registration line found: expected {TEMPLATE!r}")
    return [parse_line(ln, allow_private=allow_private) for ln in candidates]


# `syncd mirrors set NAME KEY=VALUE ...`: what registration cannot know (the mirror's sshd port,
# its account, its base URL) and what may change later. Host keys, active and pending have
# their own commands (pin / trust, enable / disable, the first ok publish).
SETTABLE = ("host", "port", "user", "http", "https", "country", "admins", "notify", "hubs")
_LISTS = ("admins", "notify", "hubs")
# the mirror's hub table, one field at a time (the other keeps its value), or `hub=` (none)
HUB_FIELDS = ("max_transfers", "weight")
_HUB_KEYS = ("hub", *(f"hub.{f}" for f in HUB_FIELDS))
# a maintenance window announced by mail: maintenance=FROM..UNTIL with reason=..., or
# maintenance= (empty) to clear it
_MAINTENANCE_KEYS = ("maintenance", "reason")


class SettingError(SyncdError, ValueError):
    """A ``KEY=VALUE`` that cannot be applied; the message names it and the fix."""


def parse_settings(pairs: list[str]) -> dict[str, object]:
    """Given ``KEY=VALUE`` words, return the inventory fields they set (still to be validated
    with the mirror: see syncd.inventory.edits.text_updated); raise SettingError.

    ``port`` is a number, ``country`` a name or an ISO code, ``admins``, ``notify`` and
    ``hubs`` are comma-separated lists, and an empty ``http`` or ``https`` removes that URL
    (an empty ``hubs`` the list). ``hub.max_transfers=N`` and ``hub.weight=N`` make the mirror a hub
    or change one field of its hub table (returned as ``hub``: the fields given, for
    `syncd.inventory.model.updated` to merge); ``hub=`` makes it no hub.
    ``maintenance=FROM..UNTIL`` with ``reason=TEXT`` sets a maintenance window (see
    `maintenance_setting`), ``maintenance=`` clears it."""
    if not pairs:
        raise SettingError(f"nothing to set: give KEY=VALUE, KEY one of {', '.join(SETTABLE)}")
    out: dict[str, object] = {}
    hub: dict[str, int] = {}
    maintenance: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep:
            raise SettingError(f"{pair[:40]!r} is not KEY=VALUE: write e.g. port=2222")
        if key not in SETTABLE and key not in _HUB_KEYS and key not in _MAINTENANCE_KEYS:
            known = ", ".join((*SETTABLE, *_HUB_KEYS, *_MAINTENANCE_KEYS))
            raise SettingError(
                f"{key[:40]!r} cannot be set: use one of {known} "
                "(host keys: 'syncd mirrors pin' or 'trust'; active: 'enable' or 'disable')"
            )
        if key in out or key.removeprefix("hub.") in hub or key in maintenance:
            raise SettingError(f"{key} given twice: give it once")
        if any(c in value for c in "\r\n\x00"):
            raise SettingError(f"{key}: the value holds a line break or NUL: give one line")
        if key in _MAINTENANCE_KEYS:
            maintenance[key] = value.strip()
        elif key.startswith("hub."):
            hub[key.removeprefix("hub.")] = _number(key, value.strip())
        elif key == "hub":
            _no_hub(value.strip())
            out["hub"] = None
        else:
            out[key] = _value(key, value.strip())
    return _with_tables(out, hub, maintenance)


def _no_hub(value: str) -> None:
    if value:
        raise SettingError(
            f"hub={value[:20]!r}: write hub.max_transfers=N and hub.weight=N "
            "to make the mirror a hub, or hub= (empty) to make it none"
        )


def _with_tables(
    out: dict[str, object], hub: dict[str, int], maintenance: dict[str, str]
) -> dict[str, object]:
    """`out` with the hub fields and the maintenance window given."""
    if hub and "hub" in out:
        raise SettingError("hub= and hub.* given together: give one of them")
    if hub:
        out["hub"] = hub
    if maintenance:
        out["maintenance"] = maintenance_setting(maintenance)
    return out


def maintenance_setting(given: dict[str, str]) -> dict[str, str] | None:
    """Given ``maintenance`` (``FROM..UNTIL``, RFC 3339 UTC, or empty: none) and ``reason``,
    return the inventory's maintenance table (None: cleared); raise SettingError."""
    if "maintenance" not in given:
        raise SettingError(
            "reason= goes with maintenance=FROM..UNTIL: write e.g. "
            "maintenance=2026-03-01T09:00Z..2026-03-01T11:00Z reason='new disks'"
        )
    window, reason = given["maintenance"], given.get("reason", "")
    if not window:
        if reason:
            raise SettingError("maintenance= (empty) clears the window: give no reason= with it")
        return None
    start, sep, end = window.partition("..")
    if not sep or not start.strip() or not end.strip():
        raise SettingError(
            f"maintenance={window[:60]!r} is not FROM..UNTIL: write e.g. "
            "maintenance=2026-03-01T09:00Z..2026-03-01T11:00Z"
        )
    if not clean_reason(reason):
        raise SettingError("a window needs reason=TEXT: say why in one line, such as 'new disks'")
    try:
        starts, ends = parse_time(start), parse_time(end)
    except NoticeError as err:
        raise SettingError(f"maintenance: {err}") from None
    return {"start": format_time(starts), "end": format_time(ends), "reason": clean_reason(reason)}


def _number(key: str, value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise SettingError(
            f"{key} {value[:20]!r} is not a number of at most 9 digits: write e.g. {key}=20"
        )
    return int(value)


def _value(key: str, value: str) -> object:
    if key == "port":
        if not value.isascii() or not value.isdigit():
            raise SettingError(f"port {value[:20]!r} is not a number: write e.g. port=2222")
        return int(value)
    if key == "country":
        try:
            return country_code(value)
        except RegistrationError as err:
            raise SettingError(str(err)) from None
    if key in _LISTS:
        items = [item.strip() for item in value.split(",") if item.strip()]
        return (items or None) if key == "hubs" else items
    if key in ("http", "https"):
        return value or None
    return value
