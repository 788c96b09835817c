"""Hostile requests and configs: rejected, and nothing runs."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.client.conftest import R1, Mirror, stub_rsync
from tests.client.test_core_request import HOSTILE


@pytest.fixture
def armed(bare_mirror: Mirror, tmp_path: Path) -> tuple[Mirror, Path]:
    """A mirror whose rsync is a stub recording each run in a marker file."""
    marker = tmp_path / "rsync-ran"
    bare_mirror.write_config(RSYNC=str(stub_rsync(tmp_path, marker)))
    return bare_mirror, marker


@pytest.mark.parametrize(
    "command",
    [
        "sync\nid",
        "sync; touch /tmp/x",
        "$(touch /tmp/x)",
        "--rsh=x",
        "-e x",
        "internal-sftp",
        "/usr/lib/openssh/sftp-server",
        "x" * 100_000,
    ],
    ids=["newline", "semicolon", "dollar-paren", "rsh", "dash-e", "sftp", "sftp-server", "100KB"],
)
def test_hostile_command_is_rejected_and_nothing_runs(
    armed: tuple[Mirror, Path], command: str
) -> None:
    mirror, marker = armed
    res = mirror.run(command=command)
    rep = res.report
    assert res.rc == 64
    assert rep["status"] == "rejected" and rep["error"]["kind"] == "rejected"
    assert not marker.exists()
    assert not (mirror.to / ".clam-clientsync").exists()
    assert "\n" not in rep["error"]["message"] and len(rep["error"]["message"]) < 200


def test_every_hostile_value_is_rejected_by_the_process(armed: tuple[Mirror, Path]) -> None:
    mirror, marker = armed
    for command in HOSTILE:
        if "\x00" in command:
            continue  # cannot be passed through an environment variable at all
        assert mirror.run(command=command).rc == 64, repr(command)
    assert not marker.exists()


def test_a_valid_request_does_run_the_stub(armed: tuple[Mirror, Path]) -> None:
    """The control for the tests above: the stub does record a run."""
    mirror, marker = armed
    leaky = {"RSYNC_RSH": "touch /tmp/x", "RSYNC_CONNECT_PROG": "nc", "RSYNC_PROXY": "p:1"}
    mirror.run(command="sync run-id=x", env=leaky)
    assert marker.exists()
    env = sorted(
        line.split("=")[0] for line in Path(f"{marker}.env").read_text().splitlines() if "=" in line
    )
    assert set(env) - {"PWD", "SHLVL", "_"} == {"HOME", "LANG", "LC_ALL", "PATH"}


@pytest.mark.parametrize("argv", [[], ["a", "b"], ["--rsh=x", R1], ["-e", "x", R1]])
def test_usage_errors_exit_64_with_a_report(bare_mirror: Mirror, argv: list[str]) -> None:
    res = bare_mirror.run(argv=argv)
    assert res.rc == 64 and res.report["error"]["kind"] == "usage"


def test_config_command_substitution_is_never_executed(bare_mirror: Mirror, tmp_path: Path) -> None:
    victim = Path(f"/tmp/clam-clientsync-test-{uuid.uuid4().hex}")
    for line in (f"TO=$(touch {victim})", f"TO=`touch {victim}`", f'TO="$(touch {victim})"'):
        bare_mirror.config.write_text(line + "\n")
        bare_mirror.config.chmod(0o600)
        res = bare_mirror.run()
        assert res.rc == 78, res.stderr
        assert res.report["error"]["kind"] == "config"
        assert "line 1" in res.report["error"]["message"]
        assert len(res.stderr.strip().splitlines()) == 1
    assert not victim.exists()


def test_world_readable_password_config_is_refused_with_the_chmod(bare_mirror: Mirror) -> None:
    bare_mirror.write_config(mode=0o644, RSYNC_PASSWORD="hunter2-secret")
    res = bare_mirror.run()
    assert res.rc == 78
    assert f"chmod 600 {bare_mirror.config}" in res.report["error"]["message"]
    assert "hunter2-secret" not in res.stdout + res.stderr
    bare_mirror.write_config(mode=0o640)
    assert bare_mirror.run().rc == 78
    bare_mirror.write_config(mode=0o644, RSYNC_PASSWORD=None)
    assert bare_mirror.run().report["error"] is None or bare_mirror.run().rc != 78


def test_password_appears_in_no_output_log_report_or_argv(
    armed: tuple[Mirror, Path], tmp_path: Path
) -> None:
    mirror, marker = armed
    secret = "pw-" + uuid.uuid4().hex
    mirror.write_config(RSYNC_PASSWORD=secret)
    res = mirror.run()
    assert secret not in marker.read_text()  # argv
    env = Path(f"{marker}.env").read_text()
    assert f"RSYNC_PASSWORD={secret}" in env  # the child's environment only
    assert secret not in res.stdout + res.stderr
    assert secret not in mirror.log_text()
    for p in mirror.state.rglob("*"):
        if p.is_file():
            assert secret.encode() not in p.read_bytes(), p


@pytest.mark.parametrize(
    ("to", "message"),
    [
        ("/", "must not be /"),
        ("/nonexistent-clam-dir", "No such file"),
        ("{home}", "home directory"),
        ("{root}", "must not contain"),
        ("{conf}", "not a directory"),
    ],
)
def test_unsafe_to_is_a_config_error(bare_mirror: Mirror, to: str, message: str) -> None:
    home = os.path.expanduser("~")
    value = to.format(home=home, root=bare_mirror.root, conf=bare_mirror.config)
    bare_mirror.to = Path(value)
    bare_mirror.write_config()
    res = bare_mirror.run()
    assert res.rc == 78 and message in res.report["error"]["message"], res.stdout


def test_unknown_source_is_a_config_error(bare_mirror: Mirror) -> None:
    res = bare_mirror.run(source="rsync9.clamav.net")
    assert res.rc == 78 and "not configured" in res.report["error"]["message"]


def test_missing_config_is_78(bare_mirror: Mirror) -> None:
    res = bare_mirror.run(argv=["--config", "/nonexistent/clam.conf", R1])
    assert res.rc == 78 and "not found" in res.report["error"]["message"]


def test_control_characters_in_logged_text_are_escaped(armed: tuple[Mirror, Path]) -> None:
    mirror, _ = armed
    res = mirror.run(command="sync run-id=\x1b[2J")
    assert res.rc == 64
    assert "\x1b" not in res.stderr


def test_config_errors_never_echo_a_password(bare_mirror: Mirror) -> None:
    bare_mirror.config.write_text(f"TO={bare_mirror.to}\nRSYNC_PASSWORD=first secondhalf\n")
    bare_mirror.config.chmod(0o600)
    res = bare_mirror.run()
    assert res.rc == 78 and "line 2" in res.report["error"]["message"]
    assert "secondhalf" not in res.stdout + res.stderr
