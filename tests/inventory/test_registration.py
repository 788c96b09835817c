"""Registration mails: the template, countries by name or code, and clear errors."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.inventory.registration import (
    Registration,
    RegistrationError,
    country_code,
    parse_line,
    parse_mail,
)

LINE = "clamav.foo.com ip address: 1.2.3.4 country: Poland admin: John Doe <john@foo.com>"


def test_template_line() -> None:
    assert parse_line(LINE) == Registration(
        "clamav.foo.com", "1.2.3.4", "PL", "John Doe", "john@foo.com", None
    )


def test_notify_address_and_ipv6_and_code() -> None:
    reg = parse_line(
        "Mirror.Example.ORG ip address: 2001:db8::1 country: de admin: Jo Ann <ja@ex.org>"
        " || <alerts@ex.org>",
        allow_private=True,  # 2001:db8::/32 is for documentation: a lab's
    )
    assert (reg.name, reg.address, reg.country, reg.notify) == (
        "mirror.example.org",
        "2001:db8::1",
        "DE",
        "alerts@ex.org",
    )
    assert reg.admin == "Jo Ann <ja@ex.org>"


@pytest.mark.parametrize(
    ("given_", "code"),
    [
        ("Poland", "PL"),
        ("pl", "PL"),
        ("POL", "PL"),
        ("United Kingdom", "GB"),
        ("UK", "GB"),
        ("Germany.", "DE"),
        ("Czechia", "CZ"),
        ("United States", "US"),
        ("Russia", "RU"),
        ("England", "GB"),
        ("Holland", "NL"),
        ("cote d'ivoire", "CI"),
        ("CÔTE D'IVOIRE", "CI"),
        ("Korea", None),  # two countries: which one?
    ],
)
def test_countries(given_: str, code: str | None) -> None:
    if code is None:
        with pytest.raises(RegistrationError, match="not a country name or ISO code"):
            country_code(given_)
        return
    assert country_code(given_) == code


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (LINE.replace("1.2.3.4", "1.2.3.999"), "ip address '1.2.3.999'"),
        (LINE.replace("Poland", "Atlantis"), "country 'Atlantis'"),
        (LINE.replace("<john@foo.com>", "<john>"), "admin"),
        (LINE.replace("John Doe ", ""), "admin has no name"),
        (LINE.replace("clamav.foo.com", "clamav.foo.com;rm"), "mirror name"),
        (LINE + " || <nope>", "notify address"),
        ("clamav.foo.com country: Poland", "not a registration line"),
    ],
)
def test_errors_name_the_field(line: str, message: str) -> None:
    with pytest.raises(RegistrationError, match=message):
        parse_line(line)


def test_mail_with_headers_and_quoting() -> None:
    mail = f"From: john@foo.com\nSubject: new mirror\n\nHello,\n\n{LINE}\n\nThanks\n"
    assert [r.name for r in parse_mail(mail)] == ["clamav.foo.com"]
    with pytest.raises(RegistrationError, match="no registration line"):
        parse_mail("Hello, please add my mirror\n")
    with pytest.raises(RegistrationError, match="larger than"):
        parse_mail(LINE + "\n" + "x" * 300_000)


def _mail(body: str, cte: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Jó Admin <john@foo.com>"
    msg["Subject"] = "new mirror"
    msg.set_content(body, charset="utf-8", cte=cte)
    return bytes(msg)


NAMED = LINE.replace("John Doe", "Jóhn Dœ") + " || <alerts@foo.com>"


@pytest.mark.parametrize("cte", ["quoted-printable", "base64"])
def test_mail_bodies_in_transfer_encodings(cte: str) -> None:
    """Mail clients send non-ASCII text quoted-printable (long lines broken with soft line
    breaks, '=' written '=3D') or base64: the line is found only after decoding."""
    raw = _mail(f"Hello,\n\n{NAMED}\n\nThanks\n", cte)
    assert NAMED.encode() not in raw  # encoded: the raw text holds no registration line
    (reg,) = parse_mail(raw)
    assert (reg.name, reg.admin_name, reg.notify) == ("clamav.foo.com", "Jóhn Dœ", "alerts@foo.com")


def test_multipart_mail_reads_its_plain_text_part() -> None:
    msg = EmailMessage()
    msg["Subject"] = "new mirror"
    msg.set_content(f"{NAMED}\n", cte="quoted-printable")
    msg.add_alternative(f"<p>{NAMED}</p>", subtype="html")
    (reg,) = parse_mail(bytes(msg))
    assert reg.admin_name == "Jóhn Dœ"


@given(st.text(max_size=2000))
def test_any_text_gives_registrations_or_our_error(text: str) -> None:
    try:
        regs = parse_mail(text)
    except RegistrationError:
        return
    assert all(len(r.country) == 2 for r in regs)
