"""CVD/CUD headers: the first 512 bytes of a ClamAV database file. Pure.

``ClamAV-VDB:<build time>:<version>:<signatures>:<flevel>:<md5>:<dsig>:<builder>[:<unix>]``,
ASCII, padded with spaces to 512 bytes. ``<md5>`` is the MD5 of everything after byte 512; the
unix time is missing in old files. The numbers are unsigned decimals (ClamAV reads them as such):
a sign, a space or an underscore makes the header invalid.
"""

import re
from datetime import datetime, timezone
from typing import NamedTuple, Optional

HEADER_SIZE = 512
MAGIC = "ClamAV-VDB"
DATABASES = ("main", "daily", "bytecode")
_NUMBER = re.compile(r"[0-9]{1,10}\Z")
_MD5 = re.compile(r"[0-9a-fA-F]{32}\Z")
_UNIX = re.compile(r"[0-9]{1,12}\Z")
_PADDING = " \0\n"


class CvdError(ValueError):
    """Not a CVD header (or not one that can be written); the message says what is wrong."""


class CvdHeader(NamedTuple):
    build_time: str  # as written, "%d %b %Y %H-%M %z"
    version: int
    signatures: int
    functionality: int
    md5: str  # lower-case hex
    builder: str
    unix_time: Optional[int]

    def build_time_rfc3339(self) -> Optional[str]:
        """Return the build time as RFC 3339 UTC, or None when it cannot be read."""
        if self.unix_time is not None:
            try:
                moment = datetime.fromtimestamp(self.unix_time, tz=timezone.utc)
            except (OverflowError, OSError, ValueError):
                pass  # beyond the calendar: the written time may still be readable
            else:
                return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            parsed = datetime.strptime(self.build_time, "%d %b %Y %H-%M %z")
        except ValueError:
            return None
        return parsed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_header(data: bytes) -> CvdHeader:
    """Given at least the first 512 bytes of a file, return its CVD header; raise CvdError."""
    if len(data) < HEADER_SIZE:
        raise CvdError(f"{len(data)} bytes: shorter than a CVD header")
    try:
        text = data[:HEADER_SIZE].decode("ascii")
    except UnicodeDecodeError:
        raise CvdError("header is not ASCII") from None
    fields = text.rstrip(_PADDING).split(":")
    if fields[0] != MAGIC or len(fields) < 8:
        raise CvdError("not a ClamAV-VDB header")
    if not all(_NUMBER.match(f) for f in fields[2:5]):
        raise CvdError("version, signatures or functionality level is not an unsigned number")
    if not _MD5.match(fields[5]):
        raise CvdError("header MD5 is not 32 hex digits")
    stamp = fields[8].strip(" ") if len(fields) > 8 else ""
    return CvdHeader(
        build_time=fields[1],
        version=int(fields[2]),
        signatures=int(fields[3]),
        functionality=int(fields[4]),
        md5=fields[5].lower(),
        builder=fields[7],
        unix_time=int(stamp) if _UNIX.match(stamp) else None,
    )


def render_header(header: CvdHeader, dsig: str = "") -> bytes:
    """Given a header (and the digital signature field, which parsing skips), return the 512
    bytes that ``parse_header`` reads back as exactly ``header``; raise CvdError when no such
    bytes exist (a colon inside a field, a number out of range, more than 512 bytes)."""
    numbers = (header.version, header.signatures, header.functionality)
    if not all(_NUMBER.match(str(n)) for n in numbers):
        raise CvdError("version, signatures and functionality level are unsigned numbers")
    if not _MD5.match(header.md5) or header.md5 != header.md5.lower():
        raise CvdError("the MD5 is 32 lower-case hex digits")
    if header.unix_time is not None and not _UNIX.match(str(header.unix_time)):
        raise CvdError("the unix time is an unsigned number of at most 12 digits")
    texts = (header.build_time, dsig, header.builder)
    if any(":" in t for t in texts):
        raise CvdError("a field of the header holds a colon")
    fields = [MAGIC, header.build_time, *map(str, numbers), header.md5, dsig, header.builder]
    if header.unix_time is not None:
        fields.append(str(header.unix_time))
    elif header.builder.rstrip(_PADDING) != header.builder:
        raise CvdError("the last field of the header ends in padding")
    try:
        data = ":".join(fields).encode("ascii")
    except UnicodeEncodeError:
        raise CvdError("the header is not ASCII") from None
    if len(data) > HEADER_SIZE:
        raise CvdError(f"the header is longer than {HEADER_SIZE} bytes")
    return data.ljust(HEADER_SIZE, b" ")
