"""``syncd keys``: render, sign and verify the authorized_keys files mirrors install."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pushwire.keyfile import ALLOWED_SIGNERS, NOSHELL, SHELL
from syncd.adapters.files import write_atomic
from syncd.adapters.sshsig import SignatureError, sign, verify
from syncd.cli.common import SyncdGroup, group
from syncd.core.config import ConfigError
from syncd.core.keyring import Keyring, load_keyring, render_files


class KeysGroup(SyncdGroup):
    prefix = "syncd keys"


app = group(
    KeysGroup,
    help="The pusher keys: render keys/pushers.toml into signed authorized_keys files.",
    no_args_is_help=True,
)

KeysDir = Annotated[
    Path,
    typer.Option(
        "--keys-dir", metavar="DIR", help="Directory holding pushers.toml; output goes beside it."
    ),
]


def _keyring(keys_dir: Path) -> Keyring:
    source = keys_dir / "pushers.toml"
    try:
        text = source.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{source} not found: create it (see keys/README.md)") from None
    return load_keyring(text, str(source))


def _write(path: Path, content: str) -> bool:
    """Write `content` atomically; return whether the file changed."""
    if path.exists() and path.read_text() == content:
        return False
    write_atomic(path, content)
    return True


@app.command("render")
def render_cmd(
    keys_dir: KeysDir = Path("keys"),
    sign_key: Annotated[
        Path | None,
        typer.Option(
            "--sign-key", metavar="FILE", help="Private key of a signer listed in pushers.toml."
        ),
    ] = None,
) -> None:
    """Write authorized_keys_noshell, authorized_keys_shell and allowed_signers from
    pushers.toml (same input, same bytes), and sign the two key files with --sign-key."""
    ring = _keyring(keys_dir)
    for name, content in render_files(ring).items():
        changed = _write(keys_dir / name, content)
        typer.echo(f"{'wrote' if changed else 'unchanged'} {keys_dir / name}")
    if sign_key is None:
        typer.echo("not signed: pass --sign-key to sign (mirrors refuse unsigned key files)")
        return
    for name in (NOSHELL, SHELL):
        typer.echo(f"signed {sign(keys_dir / name, sign_key)}")


@app.command("verify")
def verify_cmd(keys_dir: KeysDir = Path("keys")) -> None:
    """Check that each rendered key file is current and signed by a listed signer."""
    ring = _keyring(keys_dir)
    expected = render_files(ring)
    for name in (NOSHELL, SHELL, ALLOWED_SIGNERS):
        path = keys_dir / name
        if not path.exists() or path.read_text() != expected[name]:
            raise ConfigError(f"{path} is not what pushers.toml renders: run 'syncd keys render'")
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
        typer.echo(f"ok {keys_dir / name}")
