"""ed25519 key pairs made with ssh-keygen."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from devtools.harness.binaries import require


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public_line: str  # "ssh-ed25519 AAAA... comment"

    @property
    def public_path(self) -> Path:
        return self.private.with_name(self.private.name + ".pub")


def generate_keypair(path: Path, comment: str = "pushsync-test") -> KeyPair:
    """Create an unencrypted ed25519 key at `path` (and `path`.pub)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    return KeyPair(path, path.with_name(path.name + ".pub").read_text().strip())
