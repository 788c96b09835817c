"""Secrets as ssh treats them: the pusher key (and the TSIG secret, read by the same function)
is refused when group or others may read or write it, when it is not the running user's, or
when it is not a regular file, with one line naming the file, the problem and the fix.

Proven to fail before the fix: against the code as it was (syncd/ stashed) `read_secret_file`
did not exist, and ``syncd publish --key`` with a 0644 key went on to push (exit 0 against the
real sshd mirror below), with a key owned by another user as well."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from devtools.harness.cvd import DEFAULT_VERSIONS, write_release
from devtools.harness.documents import LAB_INVENTORY, write_secret
from devtools.harness.faultproxy import closed_port
from devtools.harness.sshkeys import generate_keypair
from syncd.cli import app
from syncd.errors import ConfigError
from syncd.files import read_secret_file, secret_problem
from tests.publish.fakes import MirrorFactory
from tests.publish.fixtures import FAST_POLICY, Syncd

NOBODY = 65534
EXPECT = [f"--expect={db}={v}" for db, v in DEFAULT_VERSIONS.items()]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606, 0o610, 0o666, 0o777])
def test_a_secret_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = write_secret(tmp_path / "tsig secret", "c2VjcmV0\n")
    path.chmod(mode)
    with pytest.raises(ConfigError) as err:
        read_secret_file(path, "[dns] key_secret_file")
    message = str(err.value)
    assert message.startswith(f"[dns] key_secret_file {path} is open to group or others")
    assert f"(mode {mode:04o}): run chmod 600 '{path}'" in message and "\n" not in message


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_secret_for_its_owner_only_is_read(tmp_path: Path, mode: int) -> None:
    path = write_secret(tmp_path / "secret", "c2VjcmV0\n")
    path.chmod(mode)
    assert read_secret_file(path, "the pusher key") == "c2VjcmV0\n"
    link = tmp_path / "link"
    link.symlink_to(path)  # as ssh: a link to a good key is the key
    assert read_secret_file(link, "the pusher key") == "c2VjcmV0\n"


def test_a_secret_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the file away")
    path = write_secret(tmp_path / "secret", "c2VjcmV0\n")
    os.chown(path, NOBODY, NOBODY)
    with pytest.raises(ConfigError, match=f"is owned by uid {NOBODY}, not by the user running"):
        read_secret_file(path, "the pusher key")


def test_a_fifo_a_directory_and_a_huge_file_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)  # opening it to read would block for a writer: it must not
    with pytest.raises(ConfigError, match="is not a regular file"):
        read_secret_file(fifo, "the pusher key")
    folder = tmp_path / "dir"
    folder.mkdir(mode=0o700)
    with pytest.raises(ConfigError, match="is not a regular file"):
        read_secret_file(folder, "the pusher key")
    huge = write_secret(tmp_path / "huge", "x" * (65 * 1024))
    with pytest.raises(ConfigError, match="is larger than 64 KiB"):
        read_secret_file(huge, "the pusher key")
    with pytest.raises(ConfigError, match="does not exist: point the setting at it"):
        read_secret_file(tmp_path / "absent", "the pusher key")


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=0o7777))
def test_only_modes_without_group_or_other_bits_pass(mode: int) -> None:
    """Property: over every mode, a regular file of ours passes iff no group or other bit."""
    info = os.stat_result((stat.S_IFREG | mode, 0, 0, 1, os.geteuid(), 0, 10, 0, 0, 0))
    problem = secret_problem(Path("/k"), info)
    assert (problem is None) == (mode & 0o077 == 0), (oct(mode), problem)


def test_publish_refuses_a_key_others_may_read(syncd: Syncd, fake_mirror: MirrorFactory) -> None:
    """A real publish against a real sshd mirror: the key 0644 stops it before any push, with
    one line; the same key 0600 pushes."""
    mirror = fake_mirror("perm.test", "ok")
    syncd.write(mirror.inventory_block())
    syncd.key.chmod(0o644)
    code, doc, err = syncd.publish(*EXPECT)
    assert code == 2, (doc, err)
    lines = err.strip().splitlines()
    assert lines == [
        f"syncd: the pusher key {syncd.key} is open to group or others (mode 0644): "
        f"run chmod 600 {syncd.key}"
    ], err
    assert mirror.requests == []  # no push was attempted
    syncd.key.chmod(0o600)
    code, doc, err = syncd.publish(*EXPECT)
    assert code == 0, (doc, err)


def test_the_cli_names_the_key_and_the_fix(tmp_path: Path) -> None:
    inv = tmp_path / "mirrors.toml"
    inv.write_text("")
    key = generate_keypair(tmp_path / "id_ed25519").private
    key.chmod(0o640)
    done = CliRunner().invoke(
        app,
        [
            "publish",
            "--inventory",
            str(inv),
            "--state",
            str(tmp_path / "s.db"),
            "--key",
            str(key),
            "--expect",
            "daily=1",
        ],
    )
    assert done.exit_code == 2
    assert done.output == (
        f"syncd: the pusher key {key} is open to group or others (mode 0640): run chmod 600 {key}\n"
    )


def test_publish_refuses_a_sources_key_others_may_read(
    tmp_path: Path, syncd: Syncd, fake_mirror: MirrorFactory
) -> None:
    """The pusher key of a [[sources]] entry is read as the main one: at 0644 the publish stops
    before any push, with one line naming it and the fix.

    Proven to fail with the check planted out (`read_secret_file` in syncd/publish/ssh.py made
    a plain read): the publish went on to push with that key (exit 1, the mirror's sshd
    refusing a key it does not know), with no word of the mode."""
    mirror = fake_mirror("perm.test", "ok")
    good = generate_keypair(tmp_path / "keys" / "rsync1_ed25519").private
    open_key = generate_keypair(tmp_path / "keys" / "rsync2_ed25519").private
    open_key.chmod(0o644)
    syncd.write(
        mirror.inventory_block(),
        policy=FAST_POLICY
        + f'[[sources]]\nname = "rsync1"\nkey = "{good}"\n'
        + f'[[sources]]\nname = "rsync2"\nkey = "{open_key}"\n',
    )
    code, doc, err = syncd.publish(*EXPECT)
    assert code == 2, (doc, err)
    assert err.strip().splitlines() == [
        f"syncd: the pusher key {open_key} is open to group or others (mode 0644): "
        f"run chmod 600 {open_key}"
    ], err
    assert mirror.requests == []  # no push was attempted


def test_dns_push_refuses_a_tsig_secret_others_may_read(tmp_path: Path) -> None:
    """`syncd dns push` (dry run or not) reads the TSIG secret through the same check: at 0644
    it exits 2 with one line naming the file and the fix, before any query.

    Proven to fail with the check planted out (`read_secret_file` in `server_of`,
    syncd/dns/update.py, made a plain read): the dry run went on to ask the server ("cannot
    query 127.0.0.1:PORT: Connection refused"), with no word of the mode."""
    source = tmp_path / "source"
    write_release(source, DEFAULT_VERSIONS["daily"])
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(LAB_INVENTORY)
    secret = write_secret(tmp_path / "tsig.secret", "c2VjcmV0\n")
    secret.chmod(0o644)
    config = tmp_path / "syncd.toml"
    config.write_text(f"""
inventory = "{inventory}"
state = "{tmp_path / "state.sqlite"}"
source_tree = "{source}"
[dns]
server = "127.0.0.1"
port = {closed_port()}
key_name = "pushsync-key"
key_secret_file = "{secret}"
clamav_version = "1.4.3"
""")
    for extra in (["--dry-run"], ["--json"]):
        done = CliRunner().invoke(app, ["dns", "push", "--config", str(config), *extra])
        assert done.exit_code == 2, done.output
        assert done.output == (
            f"syncd: [dns] key_secret_file {secret} is open to group or others "
            f"(mode 0644): run chmod 600 {secret}\n"
        )
