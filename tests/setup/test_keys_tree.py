"""keys/README.md and the keys/ directory agree: the source tree ships only the example, and
what the README lists as rendered is exactly what `syncd keys render --sign-key` writes."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from typer.testing import CliRunner

from devtools.harness.sshkeys import generate_keypair
from syncd.cli import app
from syncd.keys.keyring import load_keyring

ROOT = Path(__file__).resolve().parent.parent.parent
KEYS = ROOT / "keys"


def table() -> dict[str, str]:
    """The README's table: file (or pattern) -> where it is."""
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]+?) \|", (KEYS / "README.md").read_text(), re.M)
    assert rows
    return dict(rows)


def tracked() -> set[str]:
    out = subprocess.run(
        ["git", "ls-files", "keys"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return {Path(line).name for line in out.splitlines()} - {"README.md"}


def test_the_tree_holds_what_the_readme_says_is_here() -> None:
    here = {name for name, where in table().items() if where == "here"}
    assert here == tracked() == {p.name for p in KEYS.iterdir()} - {"README.md"}
    load_keyring((KEYS / "pushers.example.toml").read_text(), "pushers.example.toml")


def test_render_writes_what_the_readme_lists(tmp_path: Path) -> None:
    signer = generate_keypair(tmp_path / "private" / "signer", "db-team")
    bare = " ".join(signer.public_line.split()[:2])
    example = (KEYS / "pushers.example.toml").read_text()
    head, _, _ = example.partition("[[signers]]")
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    (keys_dir / "pushers.toml").write_text(
        f'{head}[[signers]]\nprincipal = "db-team@clamav.net"\npublic_key = "{bare}"\n'
    )
    done = CliRunner().invoke(
        app, ["keys", "render", "--keys-dir", str(keys_dir), "--sign-key", str(signer.private)]
    )
    assert done.exit_code == 0, done.output
    written = {p.name for p in keys_dir.iterdir()} - {"pushers.toml"}
    rendered = {name for name, where in table().items() if where == "rendered"}
    plain = {n for n in rendered if "*" not in n}
    sigs = {n for n in written if n.endswith(".sig")}
    assert written == plain | sigs
    assert sigs == {f"{n}.sig" for n in plain if n.startswith("authorized_keys_")}
    verify = CliRunner().invoke(app, ["keys", "verify", "--keys-dir", str(keys_dir)])
    assert verify.exit_code == 0, verify.output
