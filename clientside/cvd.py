"""CVD/CUD headers: parse the 512-byte header and judge a file against it. Pure."""

import re
from datetime import datetime, timezone
from typing import NamedTuple, Optional

HEADER_SIZE = 512
_MD5_RE = re.compile(r"[0-9a-fA-F]{32}\Z")
VERIFIED_SUFFIXES = (".cvd", ".cud")


class CvdError(ValueError):
    """The header is not a CVD header."""


class CvdHeader(NamedTuple):
    build_time: str  # as written, "%d %b %Y %H-%M %z"
    version: int
    signatures: int
    functionality: int
    md5: str
    builder: str
    unix_time: Optional[int]

    def build_time_rfc3339(self) -> Optional[str]:
        """Return the build time as RFC 3339 UTC, or None when it cannot be read."""
        if self.unix_time is not None:
            return datetime.fromtimestamp(self.unix_time, tz=timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
        try:
            parsed = datetime.strptime(self.build_time, "%d %b %Y %H-%M %z")
        except ValueError:
            return None
        return parsed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_header(data: bytes) -> CvdHeader:
    """Given at least the first 512 bytes of a file, return its CVD header; raise CvdError."""
    if len(data) < HEADER_SIZE:
        raise CvdError("shorter than a CVD header")
    try:
        text = data[:HEADER_SIZE].decode("ascii")
    except UnicodeDecodeError:
        raise CvdError("header is not ASCII") from None
    fields = text.rstrip(" \0\n").split(":")
    if fields[0] != "ClamAV-VDB" or len(fields) < 8:
        raise CvdError("not a ClamAV-VDB header")
    try:
        version, signatures, functionality = int(fields[2]), int(fields[3]), int(fields[4])
    except ValueError:
        raise CvdError("version, signatures or functionality level is not a number") from None
    if not _MD5_RE.match(fields[5]):
        raise CvdError("header MD5 is not 32 hex digits")
    unix_time: Optional[int] = None
    if len(fields) >= 9 and fields[8].strip().isdigit():
        unix_time = int(fields[8].strip())
    return CvdHeader(
        build_time=fields[1],
        version=version,
        signatures=signatures,
        functionality=functionality,
        md5=fields[5].lower(),
        builder=fields[7],
        unix_time=unix_time,
    )


class Verdict(NamedTuple):
    ok: bool
    kind: Optional[str]  # corrupt_cvd, downgrade, expectation_unmet
    message: str


def judge(
    name: str,
    *,
    header: Optional[CvdHeader],
    header_error: Optional[str],
    body_md5: Optional[str],
    served_version: Optional[int],
    expected_version: Optional[int],
) -> Verdict:
    """Given what was read of a staged CVD, return whether it may be published and why not."""
    if header is None:
        return Verdict(False, "corrupt_cvd", f"{name}: bad header: {header_error}")
    if body_md5 is None or body_md5.lower() != header.md5:
        return Verdict(False, "corrupt_cvd", f"{name}: MD5 of body does not match the header")
    if served_version is not None and header.version < served_version:
        return Verdict(
            False,
            "downgrade",
            f"{name}: version {header.version} is older than served {served_version}",
        )
    if expected_version is not None and header.version < expected_version:
        return Verdict(
            False,
            "expectation_unmet",
            f"{name}: version {header.version} is older than expected {expected_version}",
        )
    return Verdict(True, None, f"{name}: version {header.version} verified")


def database_name(filename: str) -> Optional[str]:
    """Given a file name, return the database name of a ``*.cvd``/``*.cud``, else None."""
    for suffix in VERIFIED_SUFFIXES:
        if filename.endswith(suffix) and len(filename) > len(suffix):
            return filename[: -len(suffix)]
    return None
