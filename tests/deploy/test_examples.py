"""The example syncd.toml and inventory in deploy/examples/ validate with `syncd config check`,
as an operator copies them into /etc/syncd/ (key and inventory beside syncd.toml).

Proven able to fail: with `countyr` planted in the example inventory, or `max_atempts` in the
example syncd.toml, the check exits 2 and this test fails.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from syncd.files import read_inventory

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = ROOT / "deploy" / "examples"
STATE = 'state = "/var/lib/syncd/state.sqlite"'


def test_the_examples_validate_as_installed(tmp_path: Path) -> None:
    etc = tmp_path / "etc" / "syncd"
    etc.mkdir(parents=True)
    text = (EXAMPLES / "syncd.toml").read_text()
    assert STATE in text  # where deploy/README.md's StateDirectory= puts the record
    # the host's /var/lib may not be ours to write: only the record moves into the test's tree
    state = tmp_path / "var" / "lib" / "syncd" / "state.sqlite"
    (etc / "syncd.toml").write_text(text.replace(STATE, f'state = "{state}"'))
    shutil.copy(EXAMPLES / "mirrors.toml", etc / "mirrors.toml")
    (etc / "pusher_ed25519").write_text("")  # config check checks that the key file exists
    proc = subprocess.run(
        [sys.executable, "-m", "syncd", "config", "check", "--config", str(etc / "syncd.toml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"key = {etc / 'pusher_ed25519'}" in proc.stdout
    assert f"inventory: {etc / 'mirrors.toml'}: 2 mirrors, 1 active: ok" in proc.stdout
    assert f"state: {state}: writable (created by the first publish)" in proc.stdout


def test_the_example_inventory_shows_a_pinned_and_a_pending_mirror() -> None:
    inventory = read_inventory(EXAMPLES / "mirrors.toml")
    pinned, pending = inventory.mirrors
    assert pinned.host_keys and not pinned.pending
    assert pending.pending and not pending.host_keys
