"""CVD headers over bytes, checked against the harness builder and ClamAV's sigtool."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from clientside.core.cvd import database_name, judge
from devtools.harness.cvd import build_cvd, write_cvd
from pushwire.cvd import CvdError, parse_header


def test_header_fields() -> None:
    when = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)  # rendered only (noqa: date)
    data = build_cvd("daily", 28033, signatures=123, functionality=90, build_time=when)
    h = parse_header(data)
    assert (h.version, h.signatures, h.functionality, h.builder) == (28033, 123, 90, "pushsync")
    assert h.md5 == hashlib.md5(data[512:]).hexdigest()
    assert h.build_time_rfc3339() == "2026-11-25T09:30:00Z"
    old = parse_header(build_cvd("main", 62, build_time=when, with_unix_time=False))
    assert old.unix_time is None and old.build_time_rfc3339() == "2026-11-25T09:30:00Z"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"ClamAV-VDB:x" + b" " * 100,
        b"NotClamAV:1:2:3:4:5:6:7".ljust(512),
        b"ClamAV-VDB:t:x:1:90:" + b"0" * 32 + b":d:b".ljust(512),
        b"ClamAV-VDB:t:1:1:90:nothex:d:b".ljust(512),
        b"ClamAV-VDB:t:1:1:90:\xff".ljust(512),
    ],
)
def test_bad_headers(data: bytes) -> None:
    with pytest.raises(CvdError):
        parse_header(data)


def test_judge() -> None:
    h = parse_header(build_cvd("daily", 100))
    ok = judge(
        "daily.cvd",
        header=h,
        header_error=None,
        body_md5=h.md5,
        served_version=99,
        expected_version=100,
    )
    assert ok.ok
    assert (
        judge(
            "d",
            header=None,
            header_error="x",
            body_md5=None,
            served_version=None,
            expected_version=None,
        ).kind
        == "corrupt_cvd"
    )
    assert (
        judge(
            "d",
            header=h,
            header_error=None,
            body_md5="0" * 32,
            served_version=None,
            expected_version=None,
        ).kind
        == "corrupt_cvd"
    )
    assert (
        judge(
            "d",
            header=h,
            header_error=None,
            body_md5=h.md5,
            served_version=101,
            expected_version=None,
        ).kind
        == "downgrade"
    )
    assert (
        judge(
            "d",
            header=h,
            header_error=None,
            body_md5=h.md5,
            served_version=100,
            expected_version=101,
        ).kind
        == "expectation_unmet"
    )


def test_database_name() -> None:
    assert database_name("daily.cvd") == "daily"
    assert database_name("daily.cud") == "daily"
    assert database_name("daily-28033.cdiff") is None
    assert database_name(".cvd") is None


@pytest.mark.skipif(shutil.which("sigtool") is None, reason="sigtool (Debian clamav) missing")
def test_agrees_with_sigtool(tmp_path: Path) -> None:
    path = write_cvd(tmp_path, "daily", 28033, signatures=4242)
    out = subprocess.run(
        ["sigtool", "--info", str(path)], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    h = parse_header(path.read_bytes())
    assert f"Version: {h.version}" in out
    assert f"Signatures: {h.signatures}" in out
    assert f"MD5: {h.md5}" in out
