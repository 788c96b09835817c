"""CVD headers, as syncd reads them: the release's versions from the source tree, and what a
mirror serves from the first 512 bytes of each file. Pure: bytes in, values out.

Header: ``ClamAV-VDB:<build time>:<version>:<signatures>:<flevel>:<md5>:<dsig>:<builder>[:<unix>]``,
ASCII, space padded to 512 bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEADER_SIZE = 512
DATABASES = ("main", "daily", "bytecode")
_MD5 = re.compile(r"[0-9a-fA-F]{32}\Z")
_UNIX = re.compile(r"[0-9]{1,12}\Z")


class CvdError(ValueError):
    """Not a CVD header; the message says what is wrong."""


@dataclass(frozen=True)
class CvdHeader:
    build_time: str
    version: int
    signatures: int
    functionality: int
    md5: str
    builder: str
    unix_time: int | None


def parse_header(data: bytes) -> CvdHeader:
    """Given at least the first 512 bytes of a CVD, return its header; raise CvdError."""
    if len(data) < HEADER_SIZE:
        raise CvdError(f"{len(data)} bytes: shorter than a CVD header")
    try:
        text = data[:HEADER_SIZE].decode("ascii")
    except UnicodeDecodeError:
        raise CvdError("header is not ASCII") from None
    fields = text.rstrip(" \0\n").split(":")
    if fields[0] != "ClamAV-VDB" or len(fields) < 8:
        raise CvdError("not a ClamAV-VDB header")
    try:
        version, signatures, flevel = int(fields[2]), int(fields[3]), int(fields[4])
    except ValueError:
        raise CvdError("version, signatures or functionality level is not a number") from None
    if version < 0 or not _MD5.match(fields[5]):
        raise CvdError("bad version or MD5 field")
    stamp = fields[8].strip(" ") if len(fields) > 8 else ""
    unix = int(stamp) if _UNIX.match(stamp) else None
    return CvdHeader(fields[1], version, signatures, flevel, fields[5].lower(), fields[7], unix)
