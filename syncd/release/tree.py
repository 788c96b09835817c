"""One release as the source tree holds it, read once per command (`syncd.files.read_source_tree`)
and passed down: its CVDs' headers, the files a mirror must serve whole, its CVDs' tails. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pushwire.cvd import CvdHeader
from syncd.release.manifest import CvdTail, Manifest, ReleaseFile


@dataclass(frozen=True)
class SourceTree:
    path: Path
    headers: Mapping[str, CvdHeader]
    manifest: Manifest
    files: tuple[ReleaseFile, ...]  # what a mirror must serve whole (size, SHA-256)
    tails: tuple[CvdTail, ...]  # each CVD's last bytes, what the proof compares
    built_at: float  # the newest build time in the headers (else the CVDs' mtime)

    @property
    def versions(self) -> dict[str, int]:
        return {db: h.version for db, h in self.headers.items()}

    @property
    def pins(self) -> dict[str, str]:
        """db -> the md5 its header carries: what a push through a hub pins (``md5-<db>=``)."""
        return {db: h.md5 for db, h in self.headers.items()}

    @property
    def functionality(self) -> int:
        """The daily database's functionality level (0 without one)."""
        daily = self.headers.get("daily")
        return daily.functionality if daily is not None else 0
