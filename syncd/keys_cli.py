"""``syncd keys``: render, sign and verify the authorized_keys files mirrors install."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from pushwire.keyfile import ALLOWED_SIGNERS, NOSHELL, SHELL
from syncd.adapters.sshsig import SignatureError, sign, verify
from syncd.core.keyring import KeyringError, load_keyring, render_files

keys_app = typer.Typer(
    help="The pusher keys: render keys/pushers.toml into signed authorized_keys files.",
    no_args_is_help=True,
)

KeysDir = Annotated[
    Path, typer.Option("--keys-dir", help="Directory holding pushers.toml; output goes beside it.")
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"syncd keys: {message}", err=True)
    return typer.Exit(2)


def _write(path: Path, content: str) -> bool:
    """Write `content` atomically; return whether the file changed."""
    if path.exists() and path.read_text() == content:
        return False
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(content)
    tmp.chmod(0o644)
    tmp.replace(path)
    return True


@keys_app.command("render")
def render_cmd(
    keys_dir: KeysDir = Path("keys"),
    sign_key: Annotated[
        Path | None,
        typer.Option("--sign-key", help="Private key of a signer listed in pushers.toml."),
    ] = None,
) -> None:
    """Write authorized_keys_noshell, authorized_keys_shell and allowed_signers from
    pushers.toml (same input, same bytes), and sign the two key files with --sign-key."""
    source = keys_dir / "pushers.toml"
    try:
        ring = load_keyring(source.read_text(), str(source))
    except FileNotFoundError:
        raise _fail(f"{source} not found: create it (see keys/README.md)") from None
    except KeyringError as err:
        raise _fail(str(err)) from None
    for name, content in render_files(ring).items():
        changed = _write(keys_dir / name, content)
        typer.echo(f"{'wrote' if changed else 'unchanged'} {keys_dir / name}")
    if sign_key is None:
        typer.echo("not signed: pass --sign-key to sign (mirrors refuse unsigned key files)")
        return
    try:
        for name in (NOSHELL, SHELL):
            typer.echo(f"signed {sign(keys_dir / name, sign_key)}")
    except SignatureError as err:
        raise _fail(str(err)) from None


@keys_app.command("verify")
def verify_cmd(keys_dir: KeysDir = Path("keys")) -> None:
    """Check that each rendered key file is current and signed by a listed signer."""
    source = keys_dir / "pushers.toml"
    try:
        ring = load_keyring(source.read_text(), str(source))
    except (FileNotFoundError, KeyringError) as err:
        raise _fail(str(err)) from None
    expected = render_files(ring)
    for name in (NOSHELL, SHELL, ALLOWED_SIGNERS):
        path = keys_dir / name
        if not path.exists() or path.read_text() != expected[name]:
            raise _fail(f"{path} is not what pushers.toml renders: run 'syncd keys render'")
    for name in (NOSHELL, SHELL):
        errors = []
        for signer in ring.signers:
            try:
                verify(keys_dir / name, keys_dir / ALLOWED_SIGNERS, signer.principal)
                break
            except SignatureError as err:
                errors.append(str(err))
        else:
            raise _fail(errors[-1])
        typer.echo(f"ok {keys_dir / name}")
