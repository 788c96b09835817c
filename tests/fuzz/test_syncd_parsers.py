"""Fuzz syncd's parsers of outside input: client reports, CVD headers, registration mails,
inventory files, authorized_keys lines and the current.cvd TXT record.

Each parser must end in a value or its own error, and more: the valid example parses to its
value, what is rendered parses back to itself, and an error names the field it is about."""

from __future__ import annotations

import contextlib
import json

from hypothesis import assume, example, given
from hypothesis import strategies as st

from devtools.harness.cvd import build_cvd
from pushwire import authorized_keys, cvd
from syncd.dns.plan import DnsSafetyError, TxtRecord
from syncd.inventory import edits as inventorytext
from syncd.inventory import model as inventory
from syncd.inventory import registration
from syncd.publish import report
from tests.fuzz.profiles import FUZZ
from tests.fuzz.strategies import mutate, tricky_text

REPORT = {
    "report_version": 1,
    "status": "ok",
    "verb": "sync",
    "source_requested": "rsync1.clamav.net",
    "source_used": "rsync1.clamav.net",
    "attempts": [{"source": "rsync1.clamav.net", "exit_code": 0, "duration_s": 1.5, "error": None}],
    "started_at": "2026-11-25T09:30:00Z",
    "finished_at": "2026-11-25T09:30:02Z",
    "duration_s": 2.0,
    "files_transferred": 3,
    "bytes_transferred": 1000,
    "files_deleted": 0,
    "databases": {"daily": {"version": 28033, "build_time": "x", "signatures": 1, "md5_ok": True}},
    "error": None,
    "client_version": "1.0",
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | tricky_text(20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky_text(10), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def reports(draw: st.DrawFn) -> bytes:
    doc = json.loads(json.dumps(REPORT))
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from([*REPORT, "extra", "databases"]))
        if key == "databases" and isinstance(doc["databases"], dict) and draw(st.booleans()):
            doc["databases"][draw(tricky_text(8))] = draw(json_values)
        else:
            doc[key] = draw(json_values)
    text = json.dumps(doc)
    if draw(st.booleans()):
        i = draw(st.integers(0, len(text)))
        text = text[:i] + draw(tricky_text(5)) + text[i:]
    return text.encode("utf-8", errors="surrogatepass")


def test_the_valid_report_parses_to_its_values() -> None:
    rep, cleaned = report.parse_report(json.dumps(REPORT).encode())
    assert (rep.status, rep.verb, rep.source_used, rep.duration_s) == (
        "ok",
        "sync",
        "rsync1.clamav.net",
        2.0,
    )
    assert rep.versions() == {"daily": 28033} and rep.serves({"daily": 28033})
    assert not rep.serves({"daily": 28034}) and rep.error_text() == ""
    assert cleaned == REPORT


TYPED = {"report_version": 1, "status": "ok", "duration_s": 1.0, "databases": {}, "error": None}


@FUZZ
@given(st.sampled_from(sorted(TYPED)), json_values)
def test_a_report_field_of_the_wrong_kind_is_an_error_naming_it(key: str, value: object) -> None:
    doc = {**REPORT, key: value}
    try:
        json.dumps(doc, allow_nan=False)
        strict = True
    except ValueError:  # NaN or Infinity somewhere: not JSON, refused before any field is read
        strict = False
    try:
        rep, _ = report.parse_report(json.dumps(doc).encode("utf-8", "surrogatepass"))
    except report.ReportError as err:
        if not strict:
            assert "which is not a number JSON allows" in str(err), err
            return
        assert str(err).startswith(f"report field {key}") or "report_version" in str(err), err
        return
    assert strict, "a report holding NaN or Infinity was accepted"
    got = getattr(rep, key)
    assert got == value or key in ("databases", "error")  # nested models: parsed, not equal


@FUZZ
@given(st.one_of(reports(), st.binary(max_size=300)))
@example(b"[" * 100_000)
@example(b'{"report_version": 1e999}')
@example(b'{"report_version": 99999999999999999999999}')
def test_client_report_ends_in_report_or_report_error(stdout: bytes) -> None:
    try:
        rep, cleaned = report.parse_report(stdout)
    except report.ReportError:
        return
    rep.versions()
    rep.serves({"daily": 1})
    rep.error_text()
    json.dumps(cleaned)


_VALID_CVD = build_cvd("main", 62, payload_size=64)


@FUZZ
@given(st.one_of(mutate(_VALID_CVD[:512].decode(), 520), tricky_text(600)))
@example("ClamAV-VDB:x:-1:1:1:" + "a" * 32 + ":d:b:" + " " * 500)
@example("ClamAV-VDB:x:1:1:1:" + "a" * 32 + ":d:b:\x1f1795599000")
def test_syncd_cvd_header_ends_in_header_or_cvd_error(text: str) -> None:
    data = text.encode("utf-8", errors="surrogatepass").ljust(512, b" ")
    try:
        head = cvd.parse_header(data)
    except cvd.CvdError:
        return
    assert head.version >= 0
    assert data[:512].decode("ascii").split(":")[2] == str(head.version)


MAIL = (
    "Hello,\n\nclamav.foo.com ip address: 1.2.3.4 country: Poland admin: John Doe "
    "<john@foo.com> || <mirrors@foo.com>\n\nthanks\n"
)


def test_the_valid_mail_parses_to_its_registration() -> None:
    assert registration.parse_mail(MAIL) == [
        registration.Registration(
            "clamav.foo.com", "1.2.3.4", "PL", "John Doe", "john@foo.com", "mirrors@foo.com"
        )
    ]


@FUZZ
@given(mutate(MAIL, 400))
@example("x ip address: 1.2.3.4 country: \udcff admin: A <a@b.org>")
def test_registration_mail_ends_in_registrations_or_registration_error(text: str) -> None:
    try:
        regs = registration.parse_mail(text)
    except registration.RegistrationError:
        return
    for reg in regs:
        assert len(reg.country) == 2
        reg.admin  # noqa: B018 - the property must not raise


@FUZZ
@given(tricky_text(40))
def test_country_code_ends_in_code_or_registration_error(text: str) -> None:
    with contextlib.suppress(registration.RegistrationError):
        registration.country_code(text)


INVENTORY = """
allow_private_addresses = true
[[mirrors]]
name = "m1.example.org"
host = "127.0.0.1"
port = 2222
user = "clamavdb"
country = "PL"
admins = ["A <a@b.org>"]
notify = ["n@b.org"]
host_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"]
http = "http://127.0.0.1:8080"
"""


def test_the_valid_inventory_parses_to_its_values() -> None:
    (m,) = inventory.parse_inventory(INVENTORY).mirrors
    assert (m.name, m.host, m.port, m.user, m.country) == (
        "m1.example.org",
        "127.0.0.1",
        2222,
        "clamavdb",
        "PL",
    )
    assert (m.admins, m.notify, m.http) == (["A <a@b.org>"], ["n@b.org"], "http://127.0.0.1:8080")
    assert len(m.host_keys) == 1 and m.active and not m.pending


FIELDS = ("name", "host", "port", "user", "country", "admins", "notify", "host_keys", "http")


@FUZZ
@given(st.sampled_from(FIELDS), tricky_text(20))
def test_a_bad_inventory_field_is_an_error_naming_it(field: str, value: str) -> None:
    assume(all(not 0xD800 <= ord(c) <= 0xDFFF for c in value))
    literal = json.dumps(value, ensure_ascii=True)  # a TOML basic string: the value, exactly
    if field in ("admins", "notify", "host_keys"):
        literal = f"[{literal}]"
    lines = [
        f"{field} = {literal}" if line.startswith(f"{field} = ") else line
        for line in INVENTORY.splitlines()
    ]
    try:
        inv = inventory.parse_inventory("\n".join(lines))
    except inventory.InventoryError as err:
        assert f"field {field!r}" in str(err) or "not valid TOML" in str(err), str(err)
        return
    got = getattr(inv.mirrors[0], field)  # read as written, or refused above
    assert got == ([value] if literal.startswith("[") else int(value) if field == "port" else value)


@FUZZ
@given(mutate(INVENTORY, 700))
@example('[[mirrors]]\nname = "a"\nhost = "h"\nport = 1e400\ncountry = "PL"\n')
@example('[[mirrors]]\nname = "a"\nhost = "h"\nport = 99999999999999999999\ncountry = "PL"\n')
@example('mirrors = "x"\n')
@example(INVENTORY.replace('["ssh-ed25519 ', '["\\u00a0", "ssh-ed25519 '))
@example("mirrors = [1, 2]\n")
def test_inventory_ends_in_inventory_or_inventory_error(text: str) -> None:
    try:
        inv = inventory.parse_inventory(text)
    except inventory.InventoryError:
        return
    assert inventory.parse_inventory(inventorytext.render_inventory(inv)) == inv


KEYLINE = (
    'restrict,from="192.0.2.1",command="python3 -I /x.pyz rsync1.clamav.net" '
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl pusher"
)


@FUZZ
@given(mutate(KEYLINE, 300))
@example('command="a\\" ssh-ed25519 AAAA')
@example('a="b" ')
@example("\xa0")
def test_authorized_keys_line_ends_in_key_or_authorized_keys_error(line: str) -> None:
    try:
        key = authorized_keys.parse_line(line)
    except authorized_keys.AuthorizedKeysError:
        return
    if key is not None:
        try:
            rendered = authorized_keys.render(key)
        except authorized_keys.AuthorizedKeysError as err:  # read, but not ours to write
            assert str(err), key
            return
        assert authorized_keys.parse_line(rendered) == key


def test_the_valid_authorized_keys_line_parses_to_its_values() -> None:
    key = authorized_keys.parse_line(KEYLINE)
    assert key is not None
    assert authorized_keys.parse_line(authorized_keys.render(key)) == key
    assert key.comment == "pusher" and key.key_type == "ssh-ed25519"


TXT = "1.0.9:63:28033:1781596800:1:90:49192:339"  # parsed only (noqa: date)


def test_the_valid_txt_record_parses_to_its_values() -> None:
    rec = TxtRecord.parse(TXT)
    assert (rec.clamav, rec.main, rec.daily, rec.bytecode, rec.flevel) == (
        "1.0.9",
        63,
        28033,
        339,
        90,
    )
    assert rec.versions == {"main": 63, "daily": 28033, "bytecode": 339}
    assert rec.render() == TXT


@FUZZ
@given(mutate(TXT, 80))
@example('"')
@example("1.0.9:" + "9" * 5000 + ":1:1:1:1:1:1")
def test_txt_record_ends_in_record_or_dns_safety_error(text: str) -> None:
    try:
        rec = TxtRecord.parse(text)
    except DnsSafetyError:
        return
    assert set(rec.versions) >= {"daily"}
    assert TxtRecord.parse(rec.render()) == rec
