"""Signed pusher key files for the setup tests, rendered as ``syncd keys render`` does."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from devtools.harness.binaries import require
from devtools.harness.sshkeys import KeyPair, generate_keypair
from pushwire.keyfile import ALLOWED_SIGNERS, NAMESPACE, NOSHELL
from syncd.keys.keyring import load_keyring, render_files

PRINCIPAL = "db-team@clamav.net"
DEFAULT_CLIENT = "/home/clamavdb/bin/clam-clientsync"


@dataclass(frozen=True)
class SignedKeys:
    directory: Path
    signer: KeyPair
    pushers: tuple[KeyPair, KeyPair]

    @property
    def noshell(self) -> Path:
        return self.directory / NOSHELL

    @property
    def signers(self) -> Path:
        return self.directory / ALLOWED_SIGNERS


def sign(signer: KeyPair, path: Path) -> None:
    """Write `path`.sig: `signer`'s OpenSSH signature over `path` (namespace pushsync-keys)."""
    sig = path.with_name(path.name + ".sig")
    sig.unlink(missing_ok=True)
    subprocess.run(
        [
            require("ssh-keygen"),
            "-Y",
            "sign",
            "-f",
            str(signer.private),
            "-n",
            NAMESPACE,
            str(path),
        ],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )


def make_signed_keys(directory: Path, client: str = DEFAULT_CLIENT) -> SignedKeys:
    """Generate a signer and two pusher keys, render the key files and sign them."""
    keys = directory / "private"
    signer = generate_keypair(keys / "signer", "db-team")
    p1 = generate_keypair(keys / "pusher1", "pusher1")
    p2 = generate_keypair(keys / "pusher2", "pusher2")

    def bare(k: KeyPair) -> str:
        return " ".join(k.public_line.split()[:2])

    ring = load_keyring(f"""
client = "{client}"
from = ["127.0.0.1", "::1"]
[[keys]]
source = "rsync1.clamav.net"
public_key = "{bare(p1)}"
[[keys]]
source = "rsync2.clamav.net"
public_key = "{bare(p2)}"
[[signers]]
principal = "{PRINCIPAL}"
public_key = "{bare(signer)}"
""")
    out = directory / "keys"
    out.mkdir(parents=True)
    for name, text in render_files(ring).items():
        (out / name).write_text(text)
        (out / name).chmod(0o644)
    sign(signer, out / NOSHELL)
    (out / (NOSHELL + ".sig")).chmod(0o644)
    return SignedKeys(out, signer, (p1, p2))
