"""The shared wire formats read back exactly what they write, and both sides agree: what syncd
renders the client parses to the same values, and the reverse (pushwire is the one truth)."""

from __future__ import annotations

import json
import typing
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clientside.core import authkeys
from devtools.harness.cvd import FAKE_DSIG, build_cvd, build_header
from pushwire import report as wire_report
from pushwire.authorized_keys import (
    KEY_TYPES,
    AuthorizedKey,
    AuthorizedKeysError,
    parse_line,
    render,
)
from pushwire.cvd import HEADER_SIZE, CvdError, CvdHeader, parse_header, render_header
from pushwire.keyfile import NOSHELL, forced_command, parse_forced_command
from pushwire.request import (
    DATABASES,
    MAX_DEADLINE,
    MAX_VERSION,
    RUN_ID_PATTERN,
    SOURCE_PATTERN,
    VERBS,
    Request,
    RequestError,
    parse_request,
    render_request,
)
from syncd.keys.keyring import Keyring, noshell_lines, render_files
from syncd.publish import report as syncd_report
from tests.fuzz.strategies import tricky_text

# -- requests: syncd renders, the client parses ---------------------------------------------

run_ids = st.from_regex(RUN_ID_PATTERN, fullmatch=True)
md5s = st.text("0123456789abcdef", min_size=32, max_size=32)
# a push through a hub names it and pins its CVDs; a push from a source does neither
hubs = st.just((None, {})) | st.tuples(
    st.from_regex(SOURCE_PATTERN, fullmatch=True),
    st.dictionaries(st.sampled_from(DATABASES), md5s, min_size=1),
)
requests = st.builds(
    lambda verb, run_id, expect, deadline, hub: Request(verb, run_id, expect, deadline, *hub),
    verb=st.sampled_from(VERBS),
    run_id=st.none() | run_ids,
    expect=st.dictionaries(st.sampled_from(DATABASES), st.integers(0, MAX_VERSION)),
    deadline=st.none() | st.integers(1, MAX_DEADLINE),
    hub=hubs,
)


def line_of(r: Request) -> str:
    return render_request(r.verb, r.run_id, r.expect, r.deadline, source=r.source, pins=r.pins)


@given(requests)
def test_request_render_then_parse_is_identity(request: Request) -> None:
    line = line_of(request)
    assert parse_request(line) == request


@given(
    st.text(
        st.sampled_from("syncstatuvern-id=0123456789abexpct-dailymbyo. source=hub md5-main="),
        max_size=120,
    )
)
def test_every_accepted_request_has_one_canonical_line(text: str) -> None:
    try:
        request = parse_request(text)
    except RequestError:
        return
    line = line_of(request)
    assert parse_request(line) == request
    assert line_of(parse_request(line)) == line


def test_a_hub_push_always_carries_its_pins() -> None:
    digest = "0123456789abcdef" * 2
    line = render_request("sync", "r1", {"daily": 7}, 60, source="hub-de", pins={"daily": digest})
    assert line == f"sync run-id=r1 expect-daily=7 deadline=60 source=hub-de md5-daily={digest}"
    for text in ("sync source=hub-de", f"sync md5-daily={digest}"):
        with pytest.raises(RequestError, match="pin"):
            parse_request(text)
    for bad in (f"md5-daily={digest.upper()}", "md5-daily=abc", f"md5-safebrowsing={digest}"):
        with pytest.raises(RequestError):
            parse_request(f"sync source=hub-de {bad}")
    with pytest.raises(RequestError):
        parse_request(f"sync source=-hub md5-daily={digest}")


@pytest.mark.parametrize(
    "args",
    [
        ("shell",),
        ("sync", "a b"),
        ("sync", None, {"daily": -1}),
        ("sync", None, {"daily": MAX_VERSION + 1}),
        ("sync", None, {"safebrowsing": 1}),
        ("sync", None, None, None, {"source": "hub-de"}),
        ("sync", None, None, None, {"pins": {"daily": "0" * 32}}),
        ("sync", None, None, None, {"source": "hub de", "pins": {"daily": "0" * 32}}),
        ("sync", None, None, None, {"source": "hub-de", "pins": {"daily": "0" * 31}}),
    ],
)
def test_what_the_client_would_reject_is_never_rendered(args: tuple[typing.Any, ...]) -> None:
    hub = args[4] if len(args) > 4 else {}
    with pytest.raises(RequestError):
        render_request(*args[:4], **hub)


# -- authorized_keys lines, as sshd reads them ----------------------------------------------


def sshd_dequote(text: str) -> tuple[str, str]:
    """OpenSSH's opt_dequote() (auth-options.c), line for line: given the text at an opening
    quote, return the value and the rest. Only backslash-quote is an escape."""
    assert text[0] == '"'
    s, out, i = text[1:], [], 0
    while i < len(s) and s[i] != '"':
        if s[i] == "\\" and s[i + 1 : i + 2] == '"':
            i += 1
        out.append(s[i])
        i += 1
    assert i < len(s), "missing end quote"
    return "".join(out), s[i + 1 :]


VALUE_CHARS = st.sampled_from('\\"/ ,\t=-_.:;$`*~!#') | st.characters(
    min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="\x7f"
)
values = st.text(VALUE_CHARS, max_size=30).filter(lambda v: not v.endswith("\\"))
option_names = st.from_regex(r"[A-Za-z0-9-]{1,16}", fullmatch=True)
options = st.lists(st.tuples(option_names, st.none() | values), max_size=4).map(tuple)
blobs = st.from_regex(r"[A-Za-z0-9+/]{4,60}={0,2}", fullmatch=True)
comments = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="\x7f")
    | st.just("\t"),
    max_size=30,
).map(lambda c: c.strip(" \t"))
keys = st.builds(
    AuthorizedKey,
    options=options,
    key_type=st.sampled_from(sorted(KEY_TYPES)),
    blob=blobs,
    comment=comments,
).filter(lambda k: not (k.options and k.options[0][0] in KEY_TYPES and k.options[0][1] is None))


@given(keys)
def test_authorized_key_render_then_parse_is_identity(key: AuthorizedKey) -> None:
    line = render(key)
    assert "\n" not in line
    assert parse_line(line) == key
    assert parse_line(line + "\n") == key


@given(keys)
def test_rendered_option_values_are_what_sshd_reads(key: AuthorizedKey) -> None:
    rest = render(key)
    for name, value in key.options:
        assert rest.startswith(name)
        rest = rest[len(name) :]
        if value is not None:
            assert rest.startswith("=")
            got, rest = sshd_dequote(rest[1:])
            assert got == value
        rest = rest[1:]  # the comma, or the blank before the key


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("/a\\b", '"/a\\b"'),  # a backslash is itself: sshd does not unescape it
        ('say "hi"', '"say \\"hi\\""'),
        ('a\\"b', '"a\\\\"b"'),  # a backslash before a quote: the quote is escaped, not it
        ("\\\\x", '"\\\\x"'),
    ],
)
def test_backslashes_and_quotes_survive_a_round_trip(value: str, written: str) -> None:
    key = AuthorizedKey((("command", value),), "ssh-ed25519", "AAAA")
    assert render(key) == f"command={written} ssh-ed25519 AAAA"
    assert sshd_dequote(written)[0] == value
    assert parse_line(render(key)) == key


@pytest.mark.parametrize(
    "key",
    [
        AuthorizedKey((("command", "/a\\"),), "ssh-ed25519", "AAAA"),  # sshd: missing end quote
        AuthorizedKey((("command", "a\nb"),), "ssh-ed25519", "AAAA"),
        AuthorizedKey((("no pty", None),), "ssh-ed25519", "AAAA"),
        AuthorizedKey((("ssh-rsa", None),), "ssh-ed25519", "AAAA"),
        AuthorizedKey((), "ssh-dss", "AAAA"),
        AuthorizedKey((), "ssh-ed25519", "AA AA"),
        AuthorizedKey((), "ssh-ed25519", "AAAA", " padded"),
    ],
)
def test_keys_no_line_can_express_are_refused(key: AuthorizedKey) -> None:
    with pytest.raises(AuthorizedKeysError):
        render(key)


@given(tricky_text(120))
def test_every_parsed_line_renders_back_to_itself(text: str) -> None:
    try:
        key = parse_line(text)
    except AuthorizedKeysError:
        return
    if key is not None:
        assert parse_line(render(key)) == key


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2zX9Fj5h3u+QmRpusher"
clients = st.from_regex(
    r"(/[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,11}){0,3}/clam-clientsync[a-z.]{0,4}", fullmatch=True
)
sources = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.-]{0,60}", fullmatch=True)


@given(clients, st.lists(sources, min_size=1, max_size=3))
def test_key_files_syncd_renders_are_the_ones_setup_installs(client: str, names: list[str]) -> None:
    ring = Keyring.model_validate(
        {
            "client": client,
            "from": ["192.0.2.1"],
            "keys": [{"source": s, "public_key": KEY} for s in names],
            "signers": [{"principal": "db-team@clamav.net", "public_key": KEY}],
        }
    )
    pushers = authkeys.parse_key_file(render_files(ring)[NOSHELL].encode())
    assert [(p.program, p.source) for p in pushers] == [(client, s) for s in names]
    assert [p.line for p in pushers] == noshell_lines(ring)
    for p in pushers:
        command = p.line.option("command")
        assert command is not None and parse_forced_command(command) == (client, p.source)
        assert forced_command(client, p.source) == command


# -- CVD headers ----------------------------------------------------------------------------

ascii_field = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters=":"), max_size=40
)
headers = st.builds(
    CvdHeader,
    build_time=ascii_field,
    version=st.integers(0, 9_999_999_999),
    signatures=st.integers(0, 9_999_999_999),
    functionality=st.integers(0, 9_999_999_999),
    md5=st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
    builder=ascii_field,
    unix_time=st.none() | st.integers(0, 999_999_999_999),
).filter(lambda h: h.unix_time is not None or h.builder == h.builder.rstrip(" "))


@given(headers, ascii_field)
def test_cvd_header_render_then_parse_is_identity(header: CvdHeader, dsig: str) -> None:
    data = render_header(header, dsig)
    assert len(data) == HEADER_SIZE
    assert parse_header(data + b"body") == header
    header.build_time_rfc3339()  # never raises, even beyond the calendar


@given(
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    st.booleans(),
)
def test_render_header_writes_what_clamav_files_hold(
    version: int, signatures: int, when: datetime, with_unix: bool
) -> None:
    data = build_cvd(
        "daily", version, signatures=signatures, build_time=when, with_unix_time=with_unix
    )
    header = parse_header(data)
    assert render_header(header, FAKE_DSIG) == data[:HEADER_SIZE]
    shown = when.replace(microsecond=0) if with_unix else when.replace(second=0, microsecond=0)
    assert header.build_time_rfc3339() == shown.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    "field",
    ["-5", "+5", " 5", "5_0", "0x5", ""],
)
def test_numbers_are_unsigned_decimals_on_both_sides(field: str) -> None:
    good = build_header(28033, 1000, 90, "0" * 32, T0)
    fields = good.decode().split(":")
    for i in (2, 3, 4):
        bad = ":".join([*fields[:i], field, *fields[i + 1 :]]).encode()
        with pytest.raises(CvdError):
            parse_header(bad.ljust(HEADER_SIZE, b" ")[:HEADER_SIZE])
    with pytest.raises(CvdError):
        render_header(parse_header(good)._replace(version=-5))


# -- reports: the client renders, syncd parses ----------------------------------------------

text = st.text(
    st.characters(categories=("L", "N", "P", "S", "Zs"), exclude_characters="\x85\xa0"),
    max_size=40,
)
maybe_text = st.none() | text
T0 = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)  # round-tripped only (noqa: date)

attempts = st.builds(
    wire_report.attempt,
    text,
    st.none() | st.integers(-64, 255),
    st.floats(0, 1e5, allow_nan=False),
    maybe_text,
)
databases = st.dictionaries(
    st.sampled_from(["daily", "main", "bytecode", "safebrowsing"]),
    st.fixed_dictionaries(
        {
            "file": text,
            "version": st.none() | st.integers(0, MAX_VERSION),
            "build_time": maybe_text,
            "signatures": st.none() | st.integers(0, 10**9),
            "md5_ok": st.booleans(),
        }
    ),
)

cdiff_spans = st.dictionaries(
    st.sampled_from(["daily", "main", "bytecode"]),
    st.fixed_dictionaries(
        {
            "first": st.integers(0, MAX_VERSION),
            "last": st.integers(0, MAX_VERSION),
            "count": st.integers(0, 1000),
        }
    ),
)


@st.composite
def reports(draw: st.DrawFn) -> wire_report.Report:
    rep = wire_report.new_report(
        draw(st.sampled_from(VERBS)), T0, draw(text), draw(st.none() | text)
    )
    rep["run_id"] = draw(st.none() | run_ids)
    rep["source_used"] = draw(maybe_text)
    rep["attempts"] = draw(st.lists(attempts, max_size=3))
    rep["databases"] = typing.cast(dict[str, wire_report.Database], draw(databases))
    rep["changes"] = draw(st.lists(text, max_size=3))
    rep["warnings"] = draw(st.lists(text, max_size=3))
    rep["rsync_version"] = draw(maybe_text)
    for key in ("files_transferred", "bytes_transferred", "files_deleted"):
        rep[key] = draw(st.integers(0, 10**12))  # type: ignore[literal-required]
    if draw(st.booleans()):
        wire_report.set_error(
            rep, draw(st.sampled_from(sorted(wire_report.ERROR_KINDS))), draw(text)
        )
    if draw(st.booleans()):
        rep["rounds"] = draw(st.integers(1, 20))
    if draw(st.booleans()):  # optional keys of newer clients: old ones omit them
        rep["cdiffs"] = draw(cdiff_spans)
        rep["signs"] = draw(st.lists(text, max_size=3))
    if draw(st.booleans()):  # ACCESS_LOG= set
        count = st.integers(0, 2**62)
        rep["traffic"] = {
            "lines": draw(count),
            "requests": draw(count),
            "bytes": draw(count),
            "excluded": draw(count),
            "malformed": draw(count),
            "kinds": {k: {"requests": draw(count), "bytes": draw(count)} for k in ("cvd", "other")},
            "statuses": draw(st.dictionaries(st.sampled_from(["2xx", "304", "4xx"]), count)),
            "clients": draw(st.dictionaries(st.sampled_from(["1", "0.103", "other"]), count)),
            "since": draw(
                st.none() | st.just("2026-01-01T00:00:00.000Z")
            ),  # text only (noqa: date)
            "complete": draw(st.booleans()),
        }
    finished = T0 + timedelta(milliseconds=draw(st.integers(0, 10**8)))
    return wire_report.finish(rep, draw(st.sampled_from(wire_report.STATUSES)), T0, finished)


@given(reports())
def test_report_render_then_syncd_parse_is_identity(rep: wire_report.Report) -> None:
    line = wire_report.render(rep)
    assert "\n" not in line and line.isascii()
    parsed, doc = syncd_report.parse_report((line + "\n").encode())
    assert doc == rep
    assert parsed.report_version == wire_report.REPORT_VERSION
    assert (parsed.status, parsed.verb, parsed.finished_at) == (
        rep["status"],
        rep["verb"],
        rep["finished_at"],
    )
    want = {db: d["version"] for db, d in rep["databases"].items() if d["version"] is not None}
    assert parsed.versions() == want
    error = rep["error"]
    assert (parsed.error is None) == (error is None)
    if error is not None and parsed.error is not None:
        assert (parsed.error.kind, parsed.error.message) == (error["kind"], error["message"])


def test_every_report_key_is_typed_and_the_statuses_agree() -> None:
    assert set(wire_report.KEYS) == set(typing.get_type_hints(wire_report.Report)) - {
        "rounds",
        "cdiffs",
        "signs",
        "maintenance",
        "traffic",
    }
    status = syncd_report.Report.model_fields["status"].annotation
    assert typing.get_args(status) == wire_report.STATUSES


def test_exit_codes_follow_the_error_kinds() -> None:
    for kind, (code, _) in wire_report.ERROR_KINDS.items():
        rep = wire_report.new_report("sync", T0, "x", None)
        wire_report.set_error(rep, kind, "m")
        assert wire_report.exit_code(rep) == code
    assert json.loads(wire_report.render(rep))["error"]["retryable"] is False
