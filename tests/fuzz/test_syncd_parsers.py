"""Fuzz syncd's parsers of outside input: client reports, CVD headers, registration mails,
inventory files, authorized_keys lines and the current.cvd TXT record."""

from __future__ import annotations

import contextlib
import json

from hypothesis import example, given
from hypothesis import strategies as st

from devtools.harness.cvd import build_cvd
from pushwire import authorized_keys, cvd
from syncd.core import inventory, registration, report
from syncd.core.dnsplan import DnsSafetyError, TxtRecord
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


MAIL = (
    "Hello,\n\nclamav.foo.com ip address: 1.2.3.4 country: Poland admin: John Doe "
    "<[email protected]> || <[email protected]>\n\nthanks\n"
)


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
    assert inventory.parse_inventory(inventory.render_inventory(inv)) == inv


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
        authorized_keys.parse_line(authorized_keys.render(key))


TXT = "1.0.9:63:28033:1781596800:1:90:49192:339"  # parsed only (noqa: date)


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
