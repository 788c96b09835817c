"""The example syncd.toml and inventory in deploy/examples/ validate with `syncd config check`,
as an operator installs them (syncd.toml and the key in /etc/syncd/, the inventory beside the
record in /var/lib/syncd/, where the units let syncd write).

Proven able to fail: with `countyr` planted in the example inventory, or `max_atempts` in the
example syncd.toml, the check exits 2 and this test fails; the key is installed with the mode
deploy/README.md gives it, which the check refused while the README said 640.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from devtools.harness.sshkeys import generate_keypair
from syncd.files import read_inventory

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = ROOT / "deploy" / "examples"
README = ROOT / "deploy" / "README.md"
STATE = 'state = "/var/lib/syncd/state.sqlite"'
INVENTORY = 'inventory = "/var/lib/syncd/mirrors.toml"'
UNITS = ROOT / "deploy" / "systemd"


def test_the_examples_validate_as_installed(tmp_path: Path) -> None:
    etc = tmp_path / "etc" / "syncd"
    etc.mkdir(parents=True)
    text = (EXAMPLES / "syncd.toml").read_text()
    assert STATE in text  # where deploy/README.md's StateDirectory= puts the record
    assert INVENTORY in text  # beside the record: syncd writes it
    # the host's /var/lib may not be ours to write: the record and the inventory move into the
    # test's tree
    lib = tmp_path / "var" / "lib" / "syncd"
    lib.mkdir(parents=True)
    state, inventory = lib / "state.sqlite", lib / "mirrors.toml"
    text = text.replace(STATE, f'state = "{state}"')
    (etc / "syncd.toml").write_text(text.replace(INVENTORY, f'inventory = "{inventory}"'))
    shutil.copy(EXAMPLES / "mirrors.toml", inventory)
    key = generate_keypair(etc / "pusher_ed25519", "pusher").private
    key.chmod(guide_key_mode())  # the README's, the owner the user running syncd
    proc = config_check(etc / "syncd.toml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"key = {etc / 'pusher_ed25519'}" in proc.stdout
    assert f"inventory: {inventory}: 2 mirrors, 1 active: ok" in proc.stdout
    assert f"state: {state}: writable (created by the first publish)" in proc.stdout


def writable_by(unit: Path) -> list[str]:
    """The directories a unit lets its service write (StateDirectory=, ReadWritePaths=):
    under ProtectSystem=strict, nothing else is."""
    out = []
    for line in unit.read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "StateDirectory":
            out += [f"/var/lib/{name}" for name in value.split()]
        elif key == "ReadWritePaths":
            out += [path.lstrip("-") for path in value.split()]
    return out


def test_the_publish_unit_may_write_the_examples_inventory_and_record() -> None:
    """A publish rewrites the inventory when a pending mirror's first push succeeds (and always
    writes the record): under the unit's ProtectSystem=strict, both must be in a directory it
    may write. Proven to fail before: the example put the inventory in /etc/syncd, read-only
    to the service, where the promotion's write (syncd.publish.command.finish ->
    promote_pending -> edit_inventory) raises 'cannot write the inventory': exit 2 before the
    DNS step, at every publish while the mirror stays pending."""
    unit = UNITS / "syncd-publish.service"
    assert "ProtectSystem=strict" in unit.read_text()
    config = tomllib.loads((EXAMPLES / "syncd.toml").read_text())
    writable = writable_by(unit)
    for field in ("inventory", "state"):
        path = Path(config[field])
        assert path.is_absolute(), (field, path)  # else under /etc/syncd
        assert any(path.parent == Path(w) for w in writable), (field, path, writable)


def guide_key_mode() -> int:
    """The mode deploy/README.md installs the pusher key with (`install -m MODE -o syncd`)."""
    (line,) = [ln for ln in README.read_text().splitlines() if "/PATH/TO/pusher_ed25519" in ln]
    words = shlex.split(line, comments=True)
    assert words[0] == "install" and words[words.index("-o") + 1] == "syncd", line
    return int(words[words.index("-m") + 1], 8)


def config_check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncd", "config", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_key_as_the_guide_installs_it_is_the_key_syncd_uses(tmp_path: Path) -> None:
    """Proven to fail before the guide's fix: it installed the key with -m 640, which syncd
    refuses (and config check passed it)."""
    assert guide_key_mode() == 0o600
    key = generate_keypair(tmp_path / "pusher_ed25519", "pusher").private
    (tmp_path / "syncd.toml").write_text('key = "pusher_ed25519"\n')
    key.chmod(0o640)  # as the guide had it
    refused = config_check(tmp_path / "syncd.toml")
    assert refused.returncode == 2, refused.stdout
    assert (
        f"syncd: the pusher key {key} is open to group or others (mode 0640): run chmod 600 {key}"
        in refused.stderr
    )
    key.chmod(guide_key_mode())
    assert config_check(tmp_path / "syncd.toml").returncode == 0


def test_the_example_inventory_shows_a_pinned_and_a_pending_mirror() -> None:
    inventory = read_inventory(EXAMPLES / "mirrors.toml")
    pinned, pending = inventory.mirrors
    assert pinned.host_keys and not pinned.pending
    assert pending.pending and not pending.host_keys
