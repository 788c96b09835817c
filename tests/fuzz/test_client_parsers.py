"""Fuzz the mirror client's parsers of outside input: config, request, rsync output, CVD."""

from __future__ import annotations

import contextlib

from hypothesis import example, given
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
    except config.ConfigError:
        return
    assert cfg.to.startswith("/")
    assert "/local_*" in cfg.protect_patterns
    if source is not None and cfg.sources:
        with contextlib.suppress(config.ConfigError):
            config.order_sources(cfg.sources, source)


@FUZZ
@given(mutate("sync run-id=20261125T0930Z-ab12 daily=28033 main=62 deadline=600", 300))
@example("sync\udcff")
@example("sync deadline=" + "9" * 5000)
def test_ssh_original_command_ends_in_request_or_rejection(text: str) -> None:
    try:
        req = request.parse_request(text)
    except request.RequestError:
        return
    assert req.verb in request.VERBS


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


@FUZZ
@given(st.one_of(cvd_bytes(), st.binary(max_size=700)))
@example(b"ClamAV-VDB:x:1:1:1:" + b"a" * 32 + b":d:b:" + b"1" * 300 + b" " * 137)
def test_client_cvd_header_ends_in_header_or_cvd_error(data: bytes) -> None:
    try:
        head = wire_cvd.parse_header(data)
    except wire_cvd.CvdError:
        return
    assert len(head.md5) == 32
    head.build_time_rfc3339()


@FUZZ
@given(tricky_text(80))
def test_database_name_never_raises(name: str) -> None:
    cvd.database_name(name)
