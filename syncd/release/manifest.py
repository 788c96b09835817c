"""A release is a set of files: what the source tree holds, and what a mirror must serve whole.

Real mirrors serve ``main.cvd``, ``daily.cvd``, ``bytecode.cvd``, an incremental patch
``daily-N.cdiff`` for each of the last ~30 daily versions (cvdupdate keeps cdiffs of main and
bytecode too), since ClamAV 1.5 detached signatures ``NAME-N.cvd.sign`` and ``daily-N.cdiff.sign``,
and ``timestamp``. freshclam with DNS asks for ``<db>-<version>.cdiff`` first; a mirror without
the current one (a 404) leaves the user on the old database while freshclam exits 0. So besides
the CVD headers a mirror must serve, whole and byte for byte, the current cdiffs and the
signature files of the current release.

Pure: names, sizes and digests in; the manifest and its proof list out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

CDIFF = re.compile(r"(main|daily|bytecode)-([0-9]{1,9})\.cdiff")
SIGN = re.compile(r"(main|daily|bytecode)-([0-9]{1,9})\.(cvd|cdiff)\.sign")
MAX_PROOF_BYTES = 8 * 1024 * 1024  # a cdiff is a few KB to a few hundred KB


# What a steady monitor pass compares of a file proven before: its last bytes. A cdiff and a
# .sign end in signatures over all that comes before, a CVD in its gzip trailer (the CRC-32
# and length of all it holds), so any other file of the same size differs there too; 32 bytes
# (256 bits) tell them apart as surely as more would, at half the bytes of 64 per request.
FILE_TAIL_BYTES = 32


@dataclass(frozen=True)
class ReleaseFile:
    """A file a mirror must serve exactly: its name in the tree, size and SHA-256, and its last
    bytes (at most `FILE_TAIL_BYTES`: what a monitor pass compares once the file was proven
    whole; syncd.httpcheck.conditional)."""

    name: str
    size: int
    sha256: str
    tail: bytes = b""


@dataclass(frozen=True)
class Manifest:
    versions: Mapping[str, int]  # from the CVD headers
    cdiffs: tuple[int, ...]  # daily versions with a cdiff in the tree, ascending
    signs: tuple[str, ...]  # the .sign files in the tree
    cdiff_names: tuple[str, ...] = ()  # every database's cdiffs in the tree

    def proof_names(self) -> tuple[str, ...]:
        """The files besides the CVDs a mirror must serve whole to serve this release: for
        each database the cdiff that leads to its current version (freshclam asks for
        ``main-N.cdiff`` and ``bytecode-N.cdiff`` too), and the signature files of the current
        versions (each only when the tree has it)."""
        patches = {f"{db}-{v}.cdiff" for db, v in self.versions.items()}
        current = {f"{db}-{v}.cvd.sign" for db, v in self.versions.items()}
        current |= {f"{name}.sign" for name in patches}
        names = sorted(n for n in self.cdiff_names if n in patches)
        names.extend(sorted(n for n in self.signs if n in current))
        return tuple(names)

    def missing_cdiffs(self, history: int) -> tuple[int, ...]:
        """The daily versions among the last `history` (up to the current one) that have no
        cdiff in the tree."""
        daily = self.versions.get("daily")
        if daily is None or history <= 0:
            return ()
        have = set(self.cdiffs)
        return tuple(v for v in range(max(1, daily - history + 1), daily + 1) if v not in have)


def history_warning(m: Manifest, history: int) -> str | None:
    """One line for the team when the tree carries fewer cdiffs than the policy asks for."""
    missing = m.missing_cdiffs(history)
    if not missing:
        return None
    shown = ", ".join(f"daily-{v}.cdiff" for v in missing[:3]) + (
        " ..." if len(missing) > 3 else ""
    )
    return (
        f"the source tree lacks {len(missing)} of the last {history} cdiffs ({shown}): users "
        "that far behind download the whole daily.cvd (policy cdiff_history)"
    )


def manifest(versions: Mapping[str, int], names: Sequence[str]) -> Manifest:
    """Given the tree's CVD versions and the names of the files in it, return its manifest."""
    found = [(m[1], int(m[2]), n) for n in names if (m := CDIFF.fullmatch(n))]
    cdiffs = sorted(v for db, v, _ in found if db == "daily")
    signs = sorted(n for n in names if SIGN.fullmatch(n))
    return Manifest(
        dict(versions), tuple(cdiffs), tuple(signs), tuple(sorted(n for *_, n in found))
    )


def whole(expected: ReleaseFile, status: int, body: bytes, digest: str) -> str | None:
    """Judge one fetched proof file: None when it is the expected bytes, else the problem."""
    if status != 200:
        return f"/{expected.name} answered HTTP {status}"
    if len(body) != expected.size:
        return f"/{expected.name} is {len(body)} bytes, the release's is {expected.size}"
    if digest != expected.sha256:
        return f"/{expected.name} differs from the release's (SHA-256 {digest[:12]}...)"
    return None


@dataclass(frozen=True)
class CvdTail:
    """The last bytes of a CVD in the source tree: what a mirror serving this version of
    `db` must serve at the same offsets (syncd.httpcheck.answer.tail_span)."""

    db: str
    version: int
    md5: str  # the header's MD5 of the body, lower-case hex
    size: int
    first: int  # offset of data[0]
    data: bytes

    @property
    def last(self) -> int:
        return self.first + len(self.data) - 1


def tail_problem(expected: CvdTail, md5: str, body: bytes) -> str | None:
    """Judge the tail of a served CVD whose header announced `md5` and whose bytes
    ``expected.first``-``expected.last`` were `body`: None when both are the release's."""
    name = f"/{expected.db}.cvd"
    if md5 != expected.md5:
        return (
            f"{name} is version {expected.version} with another body (MD5 {md5[:12]}..., "
            f"the release's {expected.md5[:12]}...)"
        )
    if body != expected.data:
        return f"{name}'s last {len(expected.data)} bytes differ from the release's"
    return None
