"""``syncd config check`` applies to every secret syncd.toml names (``key``, each ``[[sources]]
key``, the ``[dns]`` TSIG secret) the checks syncd applies when it uses them
(`syncd.files.read_secret_file`), each problem one line with its fix, exit 2; and a pusher key
must load as a private key.

Proven to fail on the code before (config check only asked whether `key` was a file): a 0640
key, a 0640 source key, a 0640 TSIG secret, a key holding "x" and a FIFO all passed (exit 0);
a 0640 SMTP password file passed until config check and the monitor's mail read it as a
secret (run against that code, its case fails on the exit code).
"""

from __future__ import annotations

import os
import pwd
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from devtools.harness.documents import write_secret
from devtools.harness.sshkeys import generate_keypair
from syncd.cli import app

runner = CliRunner()
TSIG = '[dns]\nkey_name = "pushsync"\nkey_secret_file = "tsig.secret"\n'
SMTP = (
    '[monitor.smtp]\nhost = "127.0.0.1"\nsender = "mirror-monitor@example.org"\n'
    'username = "monitor"\npassword_file = "smtp.password"\n'
)


def _where(tmp_path: Path, which: str) -> tuple[Path, str]:
    """The secret `which` names ("key", "source", "tsig", "smtp") in a syncd.toml written
    beside it, made valid at mode 0600, and the config's text."""
    if which == "smtp":
        return write_secret(tmp_path / "smtp.password", "hunter2\n"), SMTP
    if which == "tsig":
        return write_secret(tmp_path / "tsig.secret", "c2VjcmV0\n"), TSIG
    path = generate_keypair(tmp_path / f"pusher_{which}", "pusher").private
    if which == "key":
        return path, f'key = "{path.name}"\n'
    return path, f'[[sources]]\nname = "rsync2.clamav.net"\nkey = "{path.name}"\n'


def _check(tmp_path: Path, text: str) -> tuple[int, list[str], str]:
    config = tmp_path / "syncd.toml"
    config.write_text(text)
    result = runner.invoke(app, ["config", "check", "--config", str(config)])
    lines = [ln for ln in result.output.splitlines() if ln.startswith("syncd: ")]
    return result.exit_code, lines, result.output


@pytest.mark.parametrize("which", ["key", "source", "tsig", "smtp"])
def test_a_secret_open_to_the_group_is_refused_naming_the_fix(tmp_path: Path, which: str) -> None:
    secret, text = _where(tmp_path, which)
    code, lines, out = _check(tmp_path, text)
    assert code == 0 and not lines, out
    assert f"{secret}: " in out and ": ok" in out

    secret.chmod(0o640)  # as the deploy guide installed it
    code, lines, out = _check(tmp_path, text)
    assert code == 2, out
    (line,) = lines
    assert f"{secret} is open to group or others (mode 0640): run chmod 600 {secret}" in line


def test_every_problem_is_its_own_line(tmp_path: Path) -> None:
    key, _ = _where(tmp_path, "key")
    source, _ = _where(tmp_path, "source")
    tsig, _ = _where(tmp_path, "tsig")
    for path in (key, source, tsig):
        path.chmod(0o644)
    text = (
        f'key = "{key.name}"\n[[sources]]\nname = "rsync2.clamav.net"\nkey = "{source.name}"\n'
        + TSIG
    )
    code, lines, out = _check(tmp_path, text)
    assert code == 2, out
    assert len(lines) == 3, out
    for line, path in zip(lines, (key, source, tsig), strict=True):
        assert f"{path} is open to group or others (mode 0644): run chmod 600 {path}" in line


@pytest.mark.parametrize(
    ("plant", "says"),
    [
        (lambda p: write_secret(p, "x"), "cannot load the pusher key"),
        (lambda p: (p.write_bytes(b"\xff\xfe"), p.chmod(0o600)), "is not text"),
        (lambda p: (p.unlink(), os.mkfifo(p, 0o600)), "is not a regular file"),  # never blocks
        (lambda p: (p.unlink(), p.mkdir()), "is not a regular file"),
        (lambda p: write_secret(p, "k" * (64 * 1024 + 1)), "is larger than 64 KiB"),
        (lambda p: p.unlink(), "does not exist: fix 'key' in"),
        (lambda p: (p.unlink(), p.symlink_to("/etc/passwd")), "owned by uid 0"),
    ],
)  # fmt: skip
def test_a_key_that_is_no_private_key_is_refused(tmp_path: Path, plant: object, says: str) -> None:
    key, text = _where(tmp_path, "key")
    plant(key)  # type: ignore[operator]
    if says == "owned by uid 0" and os.geteuid() == 0:
        says = "is open to group or others (mode 0644)"  # root owns /etc/passwd: its mode
    code, lines, out = _check(tmp_path, text)
    assert code == 2, out
    (line,) = lines
    assert says in line, line


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user takes root")
@pytest.mark.parametrize("which", ["key", "source", "tsig"])
def test_a_secret_another_user_owns_is_refused_naming_chown(tmp_path: Path, which: str) -> None:
    secret, text = _where(tmp_path, which)
    nobody = pwd.getpwnam("nobody")
    os.chown(secret, nobody.pw_uid, nobody.pw_gid)  # as `install -o syncd` run for root
    code, lines, out = _check(tmp_path, text)
    assert code == 2, out
    (line,) = lines
    assert f"is owned by uid {nobody.pw_uid}, not by the user running syncd (uid 0)" in line
    assert f"run chown root {secret} && chmod 600 {secret}" in line


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mode=st.integers(min_value=0, max_value=0o777), which=st.sampled_from(["key", "tsig"]))
def test_config_check_passes_exactly_the_modes_syncd_uses(
    tmp_path: Path, mode: int, which: str
) -> None:
    """Any mode: config check passes iff no group or other bit is set (and the owner, when
    not root, may read it), as syncd's own use of the secret does."""
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    secret, text = _where(work, which)
    secret.chmod(mode | stat.S_IRUSR if os.geteuid() != 0 else mode)
    code, _, out = _check(work, text)
    assert (code == 0) == (mode & 0o077 == 0), out
