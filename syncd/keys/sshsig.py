"""OpenSSH signatures (``ssh-keygen -Y sign|verify``) over the rendered key files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from pushwire.keyfile import NAMESPACE
from syncd.errors import SyncdError


class SignatureError(SyncdError, RuntimeError):
    """Signing or verification failed; the message is ssh-keygen's reason, one line."""


def _ssh_keygen() -> str:
    found = shutil.which("ssh-keygen")
    if not found:
        raise SignatureError("ssh-keygen not found: install openssh-client")
    return found


def _first_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "no reason given"


def sign(path: Path, private_key: Path, namespace: str = NAMESPACE) -> Path:
    """Sign `path` with `private_key`; return the ``.sig`` file written beside it."""
    sig = path.with_name(path.name + ".sig")
    sig.unlink(missing_ok=True)  # ssh-keygen refuses to overwrite
    out = subprocess.run(
        [
            _ssh_keygen(),
            "-q",
            "-Y",
            "sign",
            "-f",
            str(private_key),
            "-n",
            namespace,
            "--",
            str(path),
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    if out.returncode != 0:
        raise SignatureError(f"signing {path.name} failed: {_first_line(out.stderr)}")
    return sig


def verify(path: Path, allowed_signers: Path, principal: str, namespace: str = NAMESPACE) -> str:
    """Verify ``path.sig`` over `path` for `principal`; return ssh-keygen's confirmation."""
    sig = path.with_name(path.name + ".sig")
    if not sig.exists():
        raise SignatureError(
            f"{sig} is missing: render and sign with 'syncd keys render --sign-key'"
        )
    with path.open("rb") as data:
        out = subprocess.run(
            [
                _ssh_keygen(),
                "-Y",
                "verify",
                "-f",
                str(allowed_signers),
                "-I",
                principal,
                "-n",
                namespace,
                "-s",
                str(sig),
            ],
            stdin=data,
            capture_output=True,
            timeout=60,
        )
    if out.returncode != 0:
        reason = _first_line(
            out.stderr.decode(errors="replace") + out.stdout.decode(errors="replace")
        )
        raise SignatureError(f"{path.name}: signature does not verify for {principal}: {reason}")
    return out.stdout.decode(errors="replace").strip()
