"""The key files on disk: render ``pushers.toml`` into the files mirrors install, sign them,
and verify what is there. The entry of ``syncd keys``."""

from __future__ import annotations

from pathlib import Path

from pushwire.keyfile import ALLOWED_SIGNERS, NOSHELL, SHELL
from syncd.errors import ConfigError
from syncd.files import write_atomic
from syncd.keys.keyring import Keyring, load_keyring, render_files
from syncd.keys.sshsig import SignatureError, sign, verify


def keyring(keys_dir: Path) -> Keyring:
    """The keyring `keys_dir`/pushers.toml holds; raise ConfigError or KeyringError naming
    what is wrong."""
    source = keys_dir / "pushers.toml"
    try:
        text = source.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{source} not found: create it (see keys/README.md)") from None
    return load_keyring(text, str(source))


def render(keys_dir: Path) -> list[tuple[Path, bool]]:
    """Write authorized_keys_noshell, authorized_keys_shell and allowed_signers from
    pushers.toml, each atomically; return each path and whether it changed."""
    written = []
    for name, content in render_files(keyring(keys_dir)).items():
        path = keys_dir / name
        changed = not (path.exists() and path.read_text() == content)
        if changed:
            write_atomic(path, content)
        written.append((path, changed))
    return written


def sign_key_files(keys_dir: Path, sign_key: Path) -> list[Path]:
    """Sign the two key files with `sign_key`; return the signatures' paths."""
    return [sign(keys_dir / name, sign_key) for name in (NOSHELL, SHELL)]


def verify_key_files(keys_dir: Path) -> list[Path]:
    """Check that each rendered key file is current and signed by a listed signer; return the
    key files found good. Raise ConfigError (not current) or SignatureError."""
    ring = keyring(keys_dir)
    expected = render_files(ring)
    for name in (NOSHELL, SHELL, ALLOWED_SIGNERS):
        path = keys_dir / name
        if not path.exists() or path.read_text() != expected[name]:
            raise ConfigError(f"{path} is not what pushers.toml renders: run 'syncd keys render'")
    good = []
    for name in (NOSHELL, SHELL):
        errors = []
        for signer in ring.signers:
            try:
                verify(keys_dir / name, keys_dir / ALLOWED_SIGNERS, signer.principal)
                break
            except SignatureError as err:
                errors.append(str(err))
        else:
            raise SignatureError(errors[-1])
        good.append(keys_dir / name)
    return good
