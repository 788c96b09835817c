"""``--doctor`` for mirror admins, and a real full disk."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from clientside.verbs.doctor import doctor
from devtools.harness.cvd import write_release
from devtools.harness.rsyncd import RsyncDaemon
from tests.client.conftest import R1, Mirror, fresh_mtime


def _program(tmp_path: Path) -> str:
    """An installed client program for doctor to find (its path)."""
    program = tmp_path / "clam-clientsync.pyz"
    program.write_text("#!/usr/bin/env python3\n")
    program.chmod(0o755)
    return str(program)


def _home(tmp_path: Path, *, good: bool) -> Path:
    home = tmp_path / "home"
    ssh = home / ".ssh"
    ssh.mkdir(parents=True)
    home.chmod(0o755)
    ssh.chmod(0o700 if good else 0o755)
    keys = ssh / "authorized_keys"
    line = 'restrict,command="~/bin/clam-clientsync rsync1" ssh-ed25519 AAAA pusher'
    keys.write_text(line + "\n" + ("" if good else "ssh-ed25519 AAAB shell-key\n"))
    keys.chmod(0o600 if good else 0o644)
    program = home / "bin" / "clam-clientsync"  # what the forced command runs
    program.parent.mkdir()
    program.write_text("#!/usr/bin/env python3\n")
    program.chmod(0o755)
    return home


def test_doctor_passes_on_a_good_mirror(
    tmp_path: Path, mirror: Mirror, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = doctor(str(mirror.config), str(_home(tmp_path, good=True)), R1, [_program(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "all checks passed" in out
    assert f"ok    source {R1}" in out
    assert "lock directory" in out


def test_doctor_lists_each_problem_with_its_fix(
    tmp_path: Path, bare_mirror: Mirror, capsys: pytest.CaptureFixture[str]
) -> None:
    home = _home(tmp_path, good=False)
    bare_mirror.write_config(mode=0o644, RSYNC_PASSWORD="pw")
    rc = doctor(str(bare_mirror.config), str(home), R1, [])
    out = capsys.readouterr().out
    assert rc == 1
    assert f"fix: chmod 700 {home / '.ssh'}" in out
    assert f"fix: chmod 600 {home / '.ssh' / 'authorized_keys'}" in out
    assert "every authorized key has a forced command" in out
    assert f"chmod 600 {bare_mirror.config}" in out
    bare_mirror.write_config(mode=0o600)
    rc = doctor(str(bare_mirror.config), str(home), R1, [])
    out = capsys.readouterr().out
    assert rc == 1
    assert f"FAIL  source {R1} (127.0.0.1:1) answers" in out
    assert "allow outgoing TCP to 127.0.0.1 port 1" in out


def test_doctor_checks_each_hub_and_says_a_push_falls_back_without_it(
    tmp_path: Path, mirror: Mirror, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror.write_config(HUBS="hub-de=rsync://127.0.0.1:1/clamav")
    rc = doctor(str(mirror.config), str(_home(tmp_path, good=True)), R1, [_program(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1 and f"ok    source {R1}" in out
    assert "FAIL  hub hub-de (127.0.0.1:1) answers" in out
    assert "or remove the hub from HUBS (pushes through it then fall back)" in out


def test_doctor_lists_each_module_with_the_credentials_and_names_the_fix(
    tmp_path: Path, mirror: Mirror, capsys: pytest.CaptureFixture[str]
) -> None:
    """Doctor asks each source's daemon for the module with RSYNC_USER and RSYNC_PASSWORD, as a
    sync does. Failed on the code before it: doctor only read the daemon's greeting, so a wrong
    password or module passed."""
    home = str(_home(tmp_path, good=True))
    assert doctor(str(mirror.config), home, R1, [_program(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"ok    source {R1} (127.0.0.1:" in out and "module clamavdb lists as RSYNC_USER" in out
    password = mirror.keys["RSYNC_PASSWORD"]
    mirror.write_config(RSYNC_PASSWORD="wrong")
    assert doctor(str(mirror.config), home, R1, [_program(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL  source {R1} (127.0.0.1:" in out and "(auth_failed: " in out, out
    assert "fix: set RSYNC_USER= and RSYNC_PASSWORD= in" in out and "wrong" not in out
    mirror.write_config(RSYNC_PASSWORD=password, MODULE="nosuch")
    assert doctor(str(mirror.config), home, R1, [_program(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "module nosuch lists" in out and "(unknown_module: " in out, out
    assert f"fix: correct MODULE= in {mirror.config}" in out


def test_doctor_names_a_source_whose_name_does_not_resolve(
    tmp_path: Path, mirror: Mirror, capsys: pytest.CaptureFixture[str]
) -> None:
    """``.invalid`` never resolves (RFC 6761). Failed on the code before it: the name was only
    tried by the connect, whose error did not say that the name was the problem."""
    r2 = mirror.keys["SOURCES"].split()[1]
    mirror.write_config(SOURCES=f"{R1}=rsync://rsync1.pushsync-test.invalid {r2}")
    assert doctor(str(mirror.config), str(_home(tmp_path, good=True)), R1, []) == 1
    out = capsys.readouterr().out
    assert (
        f"FAIL  source {R1} (rsync1.pushsync-test.invalid:873): the name"
        " rsync1.pushsync-test.invalid resolves (it does not: "
    ) in out, out
    assert "fix: make the host's resolver find it (getent hosts rsync1.pushsync-test.invalid" in out
    assert "ok    source rsync2.clamav.net (127.0.0.1:" in out


def test_doctor_command_line(bare_mirror: Mirror) -> None:
    res = bare_mirror.run(argv=["--doctor", "--config", str(bare_mirror.config), R1])
    assert res.rc == 1 and "problem(s) found" in res.stdout
    res = bare_mirror.run(argv=["doctor", "--config", str(bare_mirror.config)])
    assert res.rc == 1 and "FAIL" in res.stdout


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a 1 MiB tmpfs needs root; the disk-full path is unit-tested only")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount tmpfs here: {done.stderr.decode(errors='replace')}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def served_names(to: Path) -> list[str]:
    """What TO serves of the release (not the client's own staging tree and home page)."""
    return [p.name for p in to.iterdir() if p.name not in (".clam-clientsync", "index.html")]


def test_disk_full_keeps_serving_the_old_release(
    small_fs: Path,
    tmp_path: Path,
    mirror: Mirror,
    source_tree: Path,
    rsync_pair: tuple[RsyncDaemon, RsyncDaemon],
) -> None:
    mirror.to = small_fs / "public_html"
    mirror.to.mkdir()
    mirror.write_config()
    assert mirror.run().rc == 0
    served = (mirror.to / "daily.cvd").read_bytes()
    fresh_mtime(*write_release(source_tree, 28034, payload_size=2_000_000).values())
    res = mirror.run()
    rep = res.report
    assert res.rc == 1, res.stdout
    assert rep["error"]["kind"] == "disk_full"
    assert [a["exit_code"] for a in rep["attempts"]] == [11]  # local: no fail over
    assert (mirror.to / "daily.cvd").read_bytes() == served
    assert rep["databases"]["daily"]["version"] == 28033
    # the partial file rsync left is not kept: the disk is not left full
    staging = mirror.to / ".clam-clientsync" / "staging"
    assert sorted(p.name for p in staging.iterdir()) == sorted(served_names(mirror.to))
    # space comes back: the next run cleans up and publishes
    fresh_mtime(*write_release(source_tree, 28035).values())
    again = mirror.run().report
    assert again["status"] == "ok" and again["databases"]["daily"]["version"] == 28035
