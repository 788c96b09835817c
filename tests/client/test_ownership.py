"""Another local user: nothing they could change is trusted (sshd's StrictModes).

A config, state directory, log file or program that another user owns, or that group or others
may write (the file or a directory above it), is refused with one line naming the path and the
fix, before anything runs; symbolic links are never followed for the log or the state files.
The other user is ``nobody`` (tests that need to hand files to it run as root, as in CI).
"""

from __future__ import annotations

import fcntl
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from clientside.verbs.doctor import doctor
from devtools.harness.account import make_traversable
from tests.client.conftest import R1, ROOT, Mirror, stub_rsync

NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="handing files to another user needs root")


def _refused(mirror: Mirror, path: Path, fix: str, command: str = "sync run-id=x") -> str:
    res = mirror.run(command=command)
    assert res.rc == 78, res.stdout + res.stderr
    rep = res.report
    assert rep["status"] == "failed" and rep["error"]["kind"] == "config"
    message = rep["error"]["message"]
    assert str(path) in message and fix in message, message
    assert "\n" not in message
    return res.stdout


def test_world_writable_config_is_refused(bare_mirror: Mirror, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    bare_mirror.write_config(mode=0o666, RSYNC=str(stub_rsync(tmp_path, marker)))
    _refused(bare_mirror, bare_mirror.config, f"chmod go-w {bare_mirror.config}")
    assert not marker.exists()


def test_config_in_a_directory_others_may_write_is_refused(bare_mirror: Mirror) -> None:
    bare_mirror.config.parent.chmod(0o777)
    _refused(bare_mirror, bare_mirror.config.parent, "chmod go-w")


def test_world_writable_rsync_script_is_not_run(bare_mirror: Mirror, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    script = stub_rsync(tmp_path, marker)
    script.chmod(0o777)
    bare_mirror.write_config(RSYNC=str(script))
    _refused(bare_mirror, script, f"chmod go-w {script}")
    _refused(bare_mirror, script, f"chmod go-w {script}", command="version")
    assert not marker.exists()


def test_rsync_in_a_directory_others_may_write_is_not_run(
    bare_mirror: Mirror, tmp_path: Path
) -> None:
    shared = tmp_path / "shared-bin"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    marker = tmp_path / "ran"
    bare_mirror.write_config(RSYNC=str(stub_rsync(shared, marker)))
    _refused(bare_mirror, shared, f"chmod go-w {shared}")
    assert not marker.exists()


@as_root
def test_another_users_rsync_is_not_run(bare_mirror: Mirror, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    script = stub_rsync(tmp_path, marker)
    os.chown(script, NOBODY, NOBODY)
    bare_mirror.write_config(RSYNC=str(script))
    _refused(bare_mirror, script, "chown root")
    assert not marker.exists()


@as_root
def test_another_users_state_dir_and_its_planted_report_are_refused(bare_mirror: Mirror) -> None:
    state = bare_mirror.state
    state.mkdir(mode=0o777)
    state.chmod(0o777)
    planted = state / "last-report.json"
    planted.write_text('{"report_version": 1, "status": "ok", "run_id": "planted"}\n')
    for path in (state, planted):
        os.chown(path, NOBODY, NOBODY)
    out = _refused(bare_mirror, state, "chown root", command="status")
    assert "planted" not in out
    # even ours, a state directory others may write is refused
    os.chown(state, 0, 0)
    out = _refused(bare_mirror, state, f"chmod go-w {state}", command="status")
    assert "planted" not in out
    state.chmod(0o700)
    out = _refused(bare_mirror, planted, "chown root", command="status")
    assert "planted" not in out


def test_a_log_symlink_is_never_followed(bare_mirror: Mirror, tmp_path: Path) -> None:
    profile = tmp_path / "dot-profile"
    profile.write_text("PATH=/usr/bin\n")
    bare_mirror.state.mkdir(mode=0o700)
    log = bare_mirror.state / "clam-clientsync.log"
    log.symlink_to(profile)
    _refused(bare_mirror, log, "rm")
    assert profile.read_text() == "PATH=/usr/bin\n"
    # a LOG_FILE of its own, elsewhere, is not followed either
    log.unlink()
    own = tmp_path / "logs" / "sync.log"
    own.parent.mkdir()
    own.symlink_to(profile)
    bare_mirror.write_config(LOG_FILE=str(own))
    _refused(bare_mirror, own, "rm")
    assert profile.read_text() == "PATH=/usr/bin\n"


def test_a_state_file_symlink_is_refused(bare_mirror: Mirror, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text('{"report_version": 1, "status": "ok", "run_id": "linked"}\n')
    bare_mirror.state.mkdir(mode=0o700)
    (bare_mirror.state / "last-report.json").symlink_to(elsewhere)
    out = _refused(bare_mirror, bare_mirror.state / "last-report.json", "rm", command="status")
    assert "linked" not in out


@as_root
def test_a_lock_another_user_can_open_and_hold_is_refused_not_queued(
    bare_mirror: Mirror, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    bare_mirror.write_config(RSYNC=str(stub_rsync(tmp_path, marker)))
    bare_mirror.state.mkdir(mode=0o755)
    lock = bare_mirror.state / "lock"
    lock.write_text("")
    lock.chmod(0o644)
    make_traversable(bare_mirror.state)
    holder = subprocess.Popen(
        [
            "/usr/bin/python3",
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
            str(lock),
        ],
        user=NOBODY,
        group=NOBODY,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        _refused(bare_mirror, lock, f"chmod 600 {lock}")
        assert not marker.exists()
    finally:
        holder.communicate(timeout=10)
    # a lock file owned by another user is refused too
    lock.chmod(0o600)
    os.chown(lock, NOBODY, NOBODY)
    _refused(bare_mirror, lock, "chown root")


def test_a_config_that_is_a_directory_is_a_config_error(bare_mirror: Mirror) -> None:
    directory = bare_mirror.root / "conf.d"
    directory.mkdir()
    res = bare_mirror.run(argv=["--config", str(directory), R1])
    assert res.rc == 78 and "Traceback" not in res.stderr
    assert res.report["error"]["kind"] == "config"
    assert "is a directory" in res.report["error"]["message"]


def test_a_config_symlink_of_ours_is_followed_and_one_of_another_user_refused(
    bare_mirror: Mirror,
) -> None:
    link = bare_mirror.root / "link.conf"
    link.symlink_to(bare_mirror.config)
    res = bare_mirror.run(argv=["--config", str(link), R1], command="version")
    assert res.rc == 0 and res.report["status"] == "ok", res.stdout
    if os.geteuid() == 0:
        os.chown(link, NOBODY, NOBODY, follow_symlinks=False)
        res = bare_mirror.run(argv=["--config", str(link), R1], command="version")
        assert res.rc == 78 and "Traceback" not in res.stderr
        assert f"config (link) {link} is owned by nobody" in res.report["error"]["message"]


def test_a_config_symlink_others_could_replace_is_refused(bare_mirror: Mirror) -> None:
    shared = bare_mirror.root / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    link = shared / "clam-clientsync.conf"
    link.symlink_to(bare_mirror.config)
    res = bare_mirror.run(argv=["--config", str(link), R1], command="version")
    assert res.rc == 78, res.stdout
    assert (
        f"config: directory {shared} is writable by group or others"
        in (res.report["error"]["message"])
    )


def test_a_dangling_config_symlink_is_a_config_error(bare_mirror: Mirror) -> None:
    link = bare_mirror.root / "dangling.conf"
    link.symlink_to(bare_mirror.root / "missing.conf")
    res = bare_mirror.run(argv=["--config", str(link), R1])
    assert res.rc == 78 and "Traceback" not in res.stderr
    assert res.report["error"]["kind"] == "config"


@as_root
def test_an_unreadable_config_is_a_config_error_with_a_report(bare_mirror: Mirror) -> None:
    """As ``nobody``, who may reach the config but not read it (root reads any file)."""
    bare_mirror.config.chmod(0o600)
    make_traversable(bare_mirror.config.parent)
    done = subprocess.run(
        ["/usr/bin/python3", "-m", "clientside", "--config", str(bare_mirror.config), R1],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
        user=NOBODY,
        group=NOBODY,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 78, done.stderr
    assert "Traceback" not in done.stderr
    from tests.client.conftest import Result

    rep = Result(done.returncode, done.stdout, done.stderr).report
    assert rep["error"]["kind"] == "config"
    assert "cannot be read (Permission denied)" in rep["error"]["message"]


@as_root
def test_doctor_reports_what_another_user_could_change(
    bare_mirror: Mirror, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = stub_rsync(tmp_path, tmp_path / "ran")
    script.chmod(0o777)
    bare_mirror.write_config(mode=0o666, RSYNC=str(script))
    bare_mirror.state.mkdir(mode=0o777)
    bare_mirror.state.chmod(0o777)
    os.chown(bare_mirror.state, NOBODY, NOBODY)
    doctor(str(bare_mirror.config), str(tmp_path), R1, [])
    out = capsys.readouterr().out
    assert f"fix: chmod go-w {shlex.quote(str(bare_mirror.config))}" in out
    assert f"fix: chmod go-w {script}" in out
    assert f"FAIL  STATE_DIR {bare_mirror.state} is owned by nobody" in out
    assert not (tmp_path / "ran").exists()


def test_the_lock_and_state_dir_a_sync_creates_are_private(mirror: Mirror) -> None:
    assert mirror.run().report["status"] == "ok"
    assert (mirror.state.stat().st_mode & 0o777) == 0o700
    assert (mirror.state / "lock").stat().st_mode & 0o077 == 0
    fd = os.open(mirror.state / "lock", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released: nothing holds it
    finally:
        os.close(fd)
