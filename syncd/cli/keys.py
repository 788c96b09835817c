"""``syncd keys``: render, sign and verify the authorized_keys files mirrors install."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from syncd.cli.groups import SyncdGroup, group
from syncd.keys.files import render, sign_key_files, verify_key_files


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
    for path, changed in render(keys_dir):
        typer.echo(f"{'wrote' if changed else 'unchanged'} {path}")
    if sign_key is None:
        typer.echo("not signed: pass --sign-key to sign (mirrors refuse unsigned key files)")
        return
    for signature in sign_key_files(keys_dir, sign_key):
        typer.echo(f"signed {signature}")


@app.command("verify")
def verify_cmd(keys_dir: KeysDir = Path("keys")) -> None:
    """Check that each rendered key file is current and signed by a listed signer."""
    for path in verify_key_files(keys_dir):
        typer.echo(f"ok {path}")
