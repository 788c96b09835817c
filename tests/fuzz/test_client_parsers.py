"""Fuzz the mirror client's parsers of outside input: config, request, rsync output, CVD.

Each parser must end in a value or its own error, and more: the valid example parses to its
value, what is rendered parses back to itself, and an error names the field it is about."""

from __future__ import annotations

import contextlib
import hashlib
import re

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from clientside.core import config, cvd, rsyncplan
from devtools.harness.cvd import build_cvd
from pushwire import cvd as wire_cvd
from pushwire import request
from tests.fuzz.profiles import FUZZ
from tests.fuzz.strategies import mutate, tricky_text

VALID_CONFIG = (
    "TO=/srv/clamav\nRSYNC_USER=clamsync\nRSYNC_PASSWORD='s3cret'\nMODULE=\"clamavdb\"\n"
    'EXCLUDE="--exclude local_*"\n'
    'SOURCES="rsync1.clamav.net=rsync://127.0.0.1:18731 rsync2.clamav.net=rsync://h:1"\n'
    "STATE_DIR=~/var\nTIMEOUT=180\nDEADLINE=600\n"
)


@FUZZ
@given(mutate(VALID_CONFIG, 400), st.sampled_from([None, "rsync1.clamav.net", "x y"]))
def test_legacy_config_ends_in_config_or_config_error(text: str, source: str | None) -> None:
    try:
        pairs = config.parse_config_text(text)
        cfg = config.build_config(pairs, home="/home/clamavdb", requested_source=source)
    except config.ConfigError as err:
        # names where: a line, a setting, or the source asked for
        assert re.match(r"line \d+:|[A-Z][A-Z_]+\b|source name ", str(err)), str(err)
        return
    assert cfg.to.startswith("/")
    assert "/local_*" in cfg.protect_patterns
    if source is not None and cfg.sources:
        with contextlib.suppress(config.ConfigError):
            config.order_sources(cfg.sources, source)


HOME = "/home/clamavdb"


def test_the_valid_config_parses_to_its_values() -> None:
    cfg = config.build_config(
        config.parse_config_text(VALID_CONFIG), home=HOME, requested_source=None
    )
    assert (cfg.to, cfg.module, cfg.rsync_user, cfg.rsync_password) == (
        "/srv/clamav",
        "clamavdb",
        "clamsync",
        "s3cret",
    )
    assert (cfg.timeout, cfg.deadline, cfg.state_dir) == (180, 600, HOME + "/var")
    assert [(s.name, s.host, s.port) for s in cfg.sources] == [
        ("rsync1.clamav.net", "127.0.0.1", 18731),
        ("rsync2.clamav.net", "h", 1),
    ]
    assert "/local_*" in cfg.protect_patterns


BASE_CONFIG = "".join(
    line + "\n"
    for line in VALID_CONFIG.splitlines()
    if not line.startswith(("TIMEOUT", "DEADLINE"))
)


def _ascii_or_not_a_digit(value: str) -> bool:
    # a digit of another script: the open bug below (or, for decimal ones, int() reads it)
    return all(c.isascii() or not c.isdigit() for c in value)


@FUZZ
@given(
    st.sampled_from(sorted(config.INT_LIMITS)),
    st.one_of(st.integers(-5, 10**10).map(str), tricky_text(12).filter(_ascii_or_not_a_digit)),
)
def test_a_number_setting_is_its_value_or_an_error_naming_it(key: str, value: str) -> None:
    assume("'" not in value and value.isprintable())
    text = BASE_CONFIG + f"{key}='{value}'\n"
    try:
        cfg = config.build_config(config.parse_config_text(text), home=HOME, requested_source=None)
    except config.ConfigError as err:
        assert str(err).startswith(f"{key}: "), str(err)
        return
    _, lo, hi = config.INT_LIMITS[key]
    assert getattr(cfg, key.lower()) == int(value)
    assert lo <= int(value) <= hi and value.isascii()


@pytest.mark.parametrize(
    "value", ["\u00b2", "1\u00b3", "\u2460"]
)  # a digit to isdigit(), not int()
def test_a_number_setting_in_other_digits_is_an_error_naming_it(value: str) -> None:
    text = BASE_CONFIG + f"TIMEOUT='{value}'\n"
    with pytest.raises(config.ConfigError, match=r"^TIMEOUT: "):
        config.build_config(config.parse_config_text(text), home=HOME, requested_source=None)


VALID_REQUEST = "sync run-id=20261125T0930Z-ab12 expect-daily=28033 expect-main=62 deadline=600"


def test_the_valid_request_parses_to_its_values() -> None:
    assert request.parse_request(VALID_REQUEST) == request.Request(
        "sync", "20261125T0930Z-ab12", {"daily": 28033, "main": 62}, 600
    )


@FUZZ
@given(
    st.sampled_from(request.VERBS),
    st.none() | st.from_regex(request.RUN_ID_PATTERN, fullmatch=True),
    st.dictionaries(st.sampled_from(wire_cvd.DATABASES), st.integers(0, request.MAX_VERSION)),
    st.none() | st.integers(1, request.MAX_DEADLINE),
)
def test_a_rendered_request_parses_back_to_itself(
    verb: str, run_id: str | None, expect: dict[str, int], deadline: int | None
) -> None:
    line = request.render_request(verb, run_id, expect, deadline)
    assert request.parse_request(line) == request.Request(verb, run_id, expect, deadline)


@FUZZ
@given(st.sampled_from(["run-id", "expect-daily", "expect-bytecode", "deadline"]), tricky_text(12))
def test_a_bad_option_is_an_error_naming_it(key: str, value: str) -> None:
    assume(value.isprintable() and " " not in value)
    try:
        req = request.parse_request(f"sync {key}={value}")
    except request.RequestError as err:
        assert key in str(err), str(err)
        return
    if key == "run-id":
        assert req.run_id == value
    else:
        got = {"deadline": req.deadline, **req.expect}[key.removeprefix("expect-")]
        assert got == int(value) and value.isascii()


@FUZZ
@given(mutate(VALID_REQUEST, 300))
@example("sync\udcff")
@example("sync deadline=" + "9" * 5000)
def test_ssh_original_command_ends_in_request_or_rejection(text: str) -> None:
    try:
        req = request.parse_request(text)
    except request.RequestError:
        return
    assert req.verb in request.VERBS


def test_the_valid_stats_parse_to_their_figures() -> None:
    assert rsyncplan.parse_stats(STATS) == rsyncplan.Stats(3, 9_876_543, 1)


STATS = """Number of files: 4 (reg: 3, dir: 1)
Number of created files: 0
Number of deleted files: 1
Number of regular files transferred: 3
Total file size: 12,345 bytes
Total bytes sent: 1,234
Total bytes received: 9,876,543
"""


@FUZZ
@given(mutate(STATS, 600), st.integers(-300, 300))
def test_rsync_output_parsers_end_in_values(text: str, code: int) -> None:
    stats = rsyncplan.parse_stats(text)
    for value in stats:
        assert value is None or value >= 0
    rsyncplan.parse_version(text)
    rsyncplan.itemized(text)
    rsyncplan.error_lines(text)
    rsyncplan.classify(code, text)


_VALID_CVD = build_cvd("daily", 28033, payload_size=64)


@st.composite
def cvd_bytes(draw: st.DrawFn) -> bytes:
    header = bytearray(_VALID_CVD[:512])
    for _ in range(draw(st.integers(0, 6))):
        i = draw(st.integers(0, 511))
        header[i] = draw(st.sampled_from(b":0123456789 -+_\x00\xff\nAaF"))
    data = bytes(header) + _VALID_CVD[512:]
    return data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data


def test_the_valid_cvd_parses_to_its_header() -> None:
    head = wire_cvd.parse_header(_VALID_CVD)
    assert (head.version, head.md5) == (28033, hashlib.md5(_VALID_CVD[512:]).hexdigest())


@FUZZ
@given(
    st.integers(0, 10**9),
    st.integers(0, 10**9),
    st.integers(0, 999),
    st.text("0123456789abcdef", min_size=32, max_size=32),
    st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=30),
    st.none() | st.integers(0, 10**12 - 1),
)
def test_a_rendered_cvd_header_parses_back_to_itself(
    version: int, sigs: int, flevel: int, md5: str, builder: str, unix_time: int | None
) -> None:
    # the written build time is text only, never compared to a clock (noqa: date)
    head = wire_cvd.CvdHeader(
        "25 Nov 2026 09-30 +0000", version, sigs, flevel, md5, builder, unix_time
    )
    assert wire_cvd.parse_header(wire_cvd.render_header(head)) == head


@FUZZ
@given(st.one_of(cvd_bytes(), st.binary(max_size=700)))
@example(b"ClamAV-VDB:x:1:1:1:" + b"a" * 32 + b":d:b:" + b"1" * 300 + b" " * 137)
def test_client_cvd_header_ends_in_header_or_cvd_error(data: bytes) -> None:
    try:
        head = wire_cvd.parse_header(data)
    except wire_cvd.CvdError:
        return
    assert len(head.md5) == 32 and head.version >= 0
    assert data[:512].decode("ascii").split(":")[2] == str(head.version)
    head.build_time_rfc3339()


@FUZZ
@given(tricky_text(80))
def test_database_name_never_raises(name: str) -> None:
    cvd.database_name(name)
