"""Registration and inventory values from a hostile registrant: a mirror address that is not a
global unicast address, an admin whose display name smuggles a second recipient, an address
with no domain, a mail built to exhaust the MIME parser. Each is one line naming the problem,
exit 2, the inventory untouched; a mail that cannot be built fails alone.

Proven to fail before the fix (the tests run against the code as it was, syncd/ stashed): the
addresses were accepted (fe80::1%lo, 0.0.0.0, ::1, ::ffff:127.0.0.1, 10.x, 127.0.0.1), the
display name reached the sink as a second RCPT TO (victim@elsewhere.example), ``admins=jane@``
was written to the inventory, the nested MIME and the nested comments were RecursionError
tracebacks (exit 1), and ``send_each`` raised IndexError for ``jane@``."""

from __future__ import annotations

import email
import email.policy
import ipaddress
import re
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from devtools.harness.documents import LAB_INVENTORY
from devtools.harness.smtp import SmtpSink
from syncd.cli import app
from syncd.inventory.addresses import ip_problem, parse_mailbox
from syncd.inventory.model import InventoryError, parse_inventory
from syncd.inventory.registration import RegistrationError, parse_line, parse_mail
from syncd.monitor.announce import Mail
from syncd.monitor.mail import SmtpSettings, send_each, to_message

runner = CliRunner()
LINE = "clamav.example.org ip address: {ip} country: Poland admin: Jane Doe <jane@example.org>"
NEVER = ["fe80::1%lo", "fe80::1", "169.254.0.9", "0.0.0.0", "::", "::ffff:127.0.0.1",
         "::ffff:8.8.8.8", "224.0.0.1", "ff02::1", "240.0.0.1"]  # fmt: skip
LAB_ONLY = ["127.0.0.1", "127.9.9.9", "::1", "10.1.2.3", "192.168.0.1", "172.16.0.1",
            "100.64.0.1", "fd00::1", "192.0.2.7", "2001:db8::1"]  # fmt: skip


def _cli(*args: str, stdin: str | None = None) -> tuple[int, str]:
    done = runner.invoke(app, list(args), input=stdin)
    return done.exit_code, done.output


# mirror addresses


@pytest.mark.parametrize("ip", NEVER + LAB_ONLY)
def test_a_registration_with_a_non_global_address_is_refused(ip: str) -> None:
    with pytest.raises(
        RegistrationError, match=f"ip address {re.escape(repr(ip))} (is|has) .*: write"
    ) as err:
        parse_line(LINE.format(ip=ip))
    assert "\n" not in str(err.value)
    assert parse_line(LINE.format(ip="2a00:1450:4001::1")).address == "2a00:1450:4001::1"


@pytest.mark.parametrize("ip", NEVER)
def test_a_lab_never_takes_zone_ids_mapped_unspecified_multicast_or_link_local(ip: str) -> None:
    with pytest.raises(RegistrationError):
        parse_line(LINE.format(ip=ip), allow_private=True)
    block = f'[[mirrors]]\nname = "m.example.org"\nhost = "{ip}"\ncountry = "PL"\npending = true\n'
    with pytest.raises(InventoryError, match=r"mirror 'm.example.org': field 'host': .* (is|has) "):
        parse_inventory(LAB_INVENTORY + block)


@pytest.mark.parametrize("ip", LAB_ONLY)
def test_the_lab_setting_admits_private_and_loopback_addresses(ip: str) -> None:
    assert parse_line(LINE.format(ip=ip), allow_private=True).address == str(
        ipaddress.ip_address(ip)
    )
    block = f'[[mirrors]]\nname = "m.example.org"\nhost = "{ip}"\ncountry = "PL"\npending = true\n'
    with pytest.raises(InventoryError, match="allow_private_addresses = true"):
        parse_inventory(block)
    assert parse_inventory(LAB_INVENTORY + block).mirrors[0].host == ip


def test_an_inventory_url_on_a_loopback_address_is_refused_outside_a_lab() -> None:
    block = (
        '[[mirrors]]\nname = "m.example.org"\nhost = "m.example.org"\ncountry = "PL"\n'
        'pending = true\nhttp = "http://127.0.0.1:8080"\n'
    )
    with pytest.raises(InventoryError, match=r"field 'http': '127\.0\.0\.1' is a loopback address"):
        parse_inventory(block)


def test_register_and_set_refuse_the_address_with_one_line(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.toml"
    for ip in ("fe80::1%lo", "::ffff:127.0.0.1", "127.0.0.1"):
        code, out = _cli(
            "mirrors", "register", "-", "--inventory", str(inv), stdin=LINE.format(ip=ip)
        )
        assert code == 2 and len(out.strip().splitlines()) == 1, out
        assert f"ip address {ip!r} " in out and ": write" in out and not inv.exists()
    code, out = _cli(
        "mirrors", "register", "-", "--inventory", str(inv), stdin=LINE.format(ip="1.2.3.4")
    )
    assert code == 0, out
    before = inv.read_text()
    code, out = _cli(
        "mirrors", "set", "clamav.example.org", "host=0.0.0.0", "--inventory", str(inv)
    )
    assert code == 2 and len(out.strip().splitlines()) == 1, out
    assert "field 'host': '0.0.0.0' is the unspecified address" in out
    assert inv.read_text() == before


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)), st.booleans())
@example(ipaddress.ip_address("::ffff:127.0.0.1"), True)
@example(ipaddress.ip_address("::1"), True)
def test_ip_problem_admits_only_global_unicast_or_in_a_lab_private(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, lab: bool
) -> None:
    """Property: whatever address, what is accepted is unicast and not link-local, mapped or
    unspecified; outside a lab it is also global."""
    accepted = ip_problem(str(ip), allow_private=lab) is None
    mapped = isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None
    if accepted:
        assert not (ip.is_multicast or ip.is_link_local or ip.is_unspecified or mapped)
        assert lab or ip.is_global
    elif not lab:  # outside a lab, refused means not global or one of the kinds above
        assert not ip.is_global or mapped or ip.is_multicast or ip.is_reserved
    assert ip_problem(f"{ip}%eth0", allow_private=lab) is not None  # a zone id, never


# mail addresses and the headers rebuilt from them


def test_a_display_name_never_adds_a_recipient(smtp_sink: SmtpSink) -> None:
    reg = parse_line(
        "clamav.example.org ip address: 1.2.3.4 country: Poland admin: "
        '"victim@elsewhere.example, Eve" <eve@evil.example>'
    )
    assert reg.admin_email == "eve@evil.example"
    assert "@" not in reg.admin_name and "," not in reg.admin_name
    settings = SmtpSettings(smtp_sink.host, smtp_sink.port, sender="monitor@example.org")
    assert send_each([Mail((reg.admin,), "[ClamAV mirror] x: old", "b")], settings) == [None]
    assert smtp_sink.envelopes == [("monitor@example.org", ["eve@evil.example"])]
    (msg,) = smtp_sink.messages
    assert [a.addr_spec for a in msg["To"].addresses] == ["eve@evil.example"]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("jane@", "has no domain after the '@'"),
        ("@example.org", "has nothing before the '@'"),
        ("jane", "has no '@'"),
        ("jane@localhost", "is not a host name such as example.org"),
        ("jane@[127.0.0.1]", "is not a host name such as example.org"),
        ("Jane <jane@>", "has no domain after the '@'"),
        ("a@example.org b@example.org", "is not one mail address"),
        ("a@example.org;b@example.org", "is not one mail address"),
    ],
)
def test_mirrors_set_refuses_an_address_with_one_line(
    tmp_path: Path, value: str, problem: str
) -> None:
    inv = tmp_path / "inventory.toml"
    code, out = _cli(
        "mirrors", "register", "-", "--inventory", str(inv), stdin=LINE.format(ip="1.2.3.4")
    )
    assert code == 0, out
    before = inv.read_text()
    for key in ("admins", "notify"):
        code, out = _cli(
            "mirrors", "set", "clamav.example.org", f"{key}={value}", "--inventory", str(inv)
        )
        assert code == 2 and len(out.strip().splitlines()) == 1, out
        assert f"field {key!r}" in out and problem in out, out
        assert "Traceback" not in out and inv.read_text() == before


def test_a_mail_that_cannot_be_built_fails_alone(smtp_sink: SmtpSink) -> None:
    """Each mail is built alone: one that cannot be (no domain, no recipient) is that mail's
    error, the others go. A subject with a lone surrogate is cleaned where the mail is made
    (syncd.text.clean: U+FFFD), so it goes too."""
    settings = SmtpSettings(smtp_sink.host, smtp_sink.port, sender="monitor@example.org")
    bad = [
        Mail(("jane@",), "[ClamAV mirror] a: old", "b"),  # IndexError in the email package
        Mail((), "[ClamAV mirror] nobody", "b"),
    ]
    odd = Mail(("ops@example.org",), "[ClamAV mirror] \ud800", "b")
    good = Mail(("ops@example.org",), "[ClamAV mirror] n: old", "body")
    errors = send_each([*bad, odd, good], settings)
    assert errors[-2:] == [None, None]
    assert all(e is not None and "not sent" in e and "\n" not in e for e in errors[:-2]), errors
    assert [m["Subject"] for m in smtp_sink.messages] == [
        "[ClamAV mirror] \ufffd",
        good.subject,
    ]


ADDR = st.from_regex(r"[a-z0-9][a-z0-9.+_-]{0,10}@[a-z0-9]{1,10}\.(org|example|de)", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), ADDR)
@example("victim@elsewhere.example, Eve", "eve@evil.example")
@example('a"b\r\nBcc: x@y.org', "eve@evil.example")
@example("=?utf-8?q?x=40y.org=2C?=", "eve@evil.example")
def test_the_to_header_names_only_the_parsed_address(name: str, addr: str) -> None:
    """Property: whatever display name, the message's To: holds exactly the one address."""
    for written in (f"{name} <{addr}>", f'"{name}" <{addr}>'):
        try:
            box = parse_mailbox(written)
        except ValueError:
            continue  # refused whole, never half-read
        assert box.addr == addr
        msg = to_message(Mail((written,), "s", "b"), "monitor@example.org")
        back = email.message_from_bytes(bytes(msg), policy=email.policy.default)
        assert [a.addr_spec for a in back["To"].addresses] == [addr]


# mails built against the parser


def _nested(depth: int) -> bytes:
    head = b"From: a@example.org\nSubject: mirror\nMIME-Version: 1.0\n"
    parts = [
        b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(depth)
    ]
    tail = b"Content-Type: text/plain\n\n" + LINE.format(ip="1.2.3.4").encode() + b"\n"
    closes = b"".join(b"\n--b%d--\n" % i for i in reversed(range(depth)))
    return head + b"".join(parts) + tail + closes


def test_deep_mime_is_one_registration_error(tmp_path: Path) -> None:
    deep = _nested(1000)
    assert len(deep) < 64 * 1024
    with pytest.raises(RegistrationError, match="multipart sections"):
        parse_mail(deep)
    assert parse_mail(_nested(3))[0].name == "clamav.example.org"  # ordinary nesting is read
    inv = tmp_path / "inventory.toml"
    mail = tmp_path / "mail.eml"
    mail.write_bytes(deep)
    code, out = _cli("mirrors", "register", str(mail), "--inventory", str(inv))
    assert code == 2 and len(out.strip().splitlines()) == 1 and "Traceback" not in out, out


def test_nested_header_comments_are_one_registration_error() -> None:
    mail = (
        b"Content-Type: text/plain; x=" + b"(" * 5000 + b"\n\n" + LINE.format(ip="1.2.3.4").encode()
    )
    with pytest.raises(RegistrationError, match="too deeply nested"):
        parse_mail(mail)
