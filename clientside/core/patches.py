"""What the client makes of the release files beside the CVDs: incremental patches
``NAME-N.cdiff`` and detached signatures ``NAME-N.cvd.sign`` / ``NAME-N.cdiff.sign`` (ClamAV
1.5). Pure: the bytes are fed in by ``verification.py``.

Only what needs no ClamAV key is checked: a cdiff is one whole gzip stream, optionally followed
by ``:`` and a short ASCII signature (as sigtool writes them); its version is not past the CVD
it leads up to; a sign file is a small text file, and a CVD's sign file names the version of the
CVD staged beside it. Everything else is freshclam's job (it holds the key).
"""

import re
import zlib
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from clientside.core.cvd import Verdict

MAX_CDIFF_SIGNATURE = 1024  # the ``:<dsig>`` trailer sigtool appends is a few hundred bytes
MAX_SIGN_SIZE = 64 * 1024  # a detached signature is a few hundred bytes of text
_CDIFF = re.compile(r"\A([a-z][a-z0-9_]*)-([0-9]{1,9})\.cdiff\Z")
_SIGN = re.compile(r"\A([a-z][a-z0-9_]*)-([0-9]{1,9})\.(cvd|cdiff)\.sign\Z")
_SIG_CHARS = re.compile(rb"\A[\x21-\x7e]+\Z")


class ReleaseName(NamedTuple):
    database: str  # "daily"
    version: int
    kind: str  # "cdiff", "cvd.sign", "cdiff.sign"


def release_name(filename: str) -> Optional[ReleaseName]:
    """Return what a cdiff or sign file's name says, or None for any other name."""
    m = _CDIFF.match(filename)
    if m:
        return ReleaseName(m.group(1), int(m.group(2)), "cdiff")
    m = _SIGN.match(filename)
    if m:
        return ReleaseName(m.group(1), int(m.group(2)), m.group(3) + ".sign")
    return None


def is_release_file(filename: str) -> bool:
    """Return whether ``filename`` is a cdiff or a sign file (checked before publishing)."""
    return release_name(filename) is not None


class GzipCheck:
    """Fed a cdiff's bytes chunk by chunk; tells whether they are one whole gzip stream followed
    by nothing or by ``:`` and a short ASCII signature."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(wbits=31)
        self._trailer = b""
        self._error: Optional[str] = None
        self._seen = 0

    def feed(self, chunk: bytes) -> None:
        if self._error or not chunk:
            return
        self._seen += len(chunk)
        if self._z.eof:
            self._trailer += chunk
        else:
            try:
                # the output is not kept: bound it per call, then drain what is left
                self._z.decompress(chunk, 1 << 16)
                while self._z.unconsumed_tail and not self._z.eof:
                    self._z.decompress(self._z.unconsumed_tail, 1 << 16)
            except zlib.error as exc:
                self._error = f"not a gzip stream ({exc})"
                return
            if self._z.eof:
                self._trailer += self._z.unused_data
        if len(self._trailer) > MAX_CDIFF_SIGNATURE + 2:
            self._error = f"{len(self._trailer)} bytes after the gzip stream"

    def result(self) -> Optional[str]:
        """Return what is wrong with the bytes fed, or None when they are a whole cdiff."""
        if self._error:
            return self._error
        if self._seen == 0:
            return "empty"
        if not self._z.eof:
            return "truncated gzip stream"
        trailer = self._trailer
        if not trailer:
            return None
        if trailer.endswith(b"\n"):
            trailer = trailer[:-1]
        if not trailer.startswith(b":") or not _SIG_CHARS.match(trailer[1:]):
            return "data after the gzip stream that is not ':' and a signature"
        return None


def sign_problem(size: int, head: bytes) -> Optional[str]:
    """Given a sign file's size and its first bytes, return what is wrong, or None."""
    if size > MAX_SIGN_SIZE:
        return f"{size} bytes, more than a sign file's {MAX_SIGN_SIZE}"
    if size == 0:
        return "empty"
    if b"\x00" in head:
        return "not a text file"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "not a text file"
    return None


def judge_release_file(
    path: str,
    *,
    regular: bool,
    content_problem: Optional[str],
    cvd_versions: Dict[str, int],
) -> Verdict:
    """Given a staged cdiff or sign file, whether it is a regular file, what is wrong with its
    bytes (``GzipCheck``/``sign_problem``) and the versions of the CVDs staged beside it
    (headers that parsed), return whether it may be published."""
    base = path.rsplit("/", 1)[-1]
    name = release_name(base)
    if name is None:
        return Verdict(True, None, f"{path}: not a release file")
    if not regular:
        return Verdict(False, "corrupt_file", f"{path}: not a regular file")
    if content_problem:
        return Verdict(False, "corrupt_file", f"{path}: {content_problem}")
    cvd_version = cvd_versions.get(name.database) if "/" not in path else None
    # a file for a version past the CVD beside it: the source is half updated, or lies. An
    # older one (a signature or patch of an earlier release the source still keeps) is fine.
    if cvd_version is not None and name.version > cvd_version:
        return Verdict(
            False,
            "incoherent",
            f"{path}: version {name.version} is past {name.database}.cvd's {cvd_version}",
        )
    return Verdict(True, None, f"{path}: checked")


class CdiffRange(NamedTuple):
    first: int
    last: int
    files: int  # how many (``count`` in the report)


def served_release_files(
    names: Sequence[str],
) -> Tuple[Dict[str, CdiffRange], List[str]]:
    """Given the top-level names of regular files TO serves, return the cdiff range per
    database and the sign files, sorted."""
    versions: Dict[str, List[int]] = {}
    signs: List[str] = []
    for base in names:
        name = release_name(base)
        if name is None:
            continue
        if name.kind == "cdiff":
            versions.setdefault(name.database, []).append(name.version)
        else:
            signs.append(base)
    ranges = {db: CdiffRange(min(vs), max(vs), len(set(vs))) for db, vs in sorted(versions.items())}
    return ranges, sorted(signs)
