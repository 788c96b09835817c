"""A state directory belongs to one tree: two configs with different TO in one account never
share a lock, a queue mark or a report."""

from __future__ import annotations

from pathlib import Path

import pytest

from clientside.verbs.doctor import doctor
from devtools.harness.rsyncd import RsyncDaemon
from tests.client.conftest import R1, Mirror, make_mirror
from tests.client.test_lock import slow_rsync, wait_for


def _second(tmp_path: Path, rsync_pair: tuple[RsyncDaemon, RsyncDaemon], **keys: str) -> Mirror:
    other = make_mirror(tmp_path / "b", rsync_pair)
    other.write_config(**keys)
    return other


def test_a_state_dir_bound_to_another_tree_is_refused_and_never_answers_for_it(
    mirror: Mirror, rsync_pair: tuple[RsyncDaemon, RsyncDaemon], tmp_path: Path
) -> None:
    first = mirror.run(command="sync run-id=a")
    assert first.report["status"] == "ok"
    assert (mirror.state / "tree").read_text().strip() == str(mirror.to.resolve())
    other = _second(tmp_path, rsync_pair, STATE_DIR=str(mirror.state))
    for command in ("sync run-id=b", "status"):
        res = other.run(command=command)
        assert res.rc == 78, res.stdout
        err = res.report["error"]
        assert err["kind"] == "config"
        assert (
            f"STATE_DIR {mirror.state} holds the state of TO {mirror.to.resolve()}"
            in (err["message"])
        )
        assert "STATE_DIR= of its own" in err["message"]
        assert '"run_id": "a"' not in res.stdout
    assert not list(other.to.glob("*.cvd")), "nothing synced into the other tree"
    # the owner of the state directory is not disturbed
    assert mirror.run(command="status").report["run_id"] == "a"


def test_a_push_queued_behind_another_tree_is_refused_not_queued(
    mirror: Mirror, rsync_pair: tuple[RsyncDaemon, RsyncDaemon], tmp_path: Path
) -> None:
    script, log = slow_rsync(tmp_path, 1.5)
    mirror.write_config(RSYNC=str(script))
    running = mirror.popen(command="sync run-id=a")
    try:
        wait_for(lambda: log.exists() and "start" in log.read_text())
        other = _second(tmp_path, rsync_pair, STATE_DIR=str(mirror.state))
        res = other.run(command="sync run-id=b")
        assert res.rc == 78 and res.report["status"] == "failed", res.stdout
        assert res.report["error"]["kind"] == "config"
        assert not (mirror.state / "update-required").exists()
        running.communicate(timeout=60)
    finally:
        if running.poll() is None:
            running.kill()
            running.communicate()
    assert running.returncode == 0


def test_status_of_a_tree_with_its_own_state_dir_reads_only_its_own_report(
    mirror: Mirror, rsync_pair: tuple[RsyncDaemon, RsyncDaemon], tmp_path: Path
) -> None:
    assert mirror.run(command="sync run-id=a").report["status"] == "ok"
    other = _second(tmp_path, rsync_pair)
    assert other.state != mirror.state
    rep = other.run(command="status").report
    assert rep["run_id"] is None and rep["warnings"] == ["no sync has completed yet"]
    assert rep["databases"] == {}
    synced = other.run(command="sync run-id=b").report
    assert synced["status"] == "ok"
    assert other.run(command="status").report["run_id"] == "b"
    assert mirror.run(command="status").report["run_id"] == "a"


def test_a_report_found_before_the_state_dir_is_bound_is_not_served(bare_mirror: Mirror) -> None:
    """A state directory shared before the binding existed may hold another tree's report."""
    bare_mirror.state.mkdir(mode=0o700)
    planted = bare_mirror.state / "last-report.json"
    planted.write_text('{"report_version": 1, "status": "ok", "run_id": "other-tree"}\n')
    planted.chmod(0o600)
    res = bare_mirror.run(command="status")
    assert res.rc == 0 and "other-tree" not in res.stdout
    assert res.report["warnings"] == ["no sync has completed yet"]
    assert (bare_mirror.state / "tree").read_text().strip() == str(bare_mirror.to.resolve())


def test_doctor_flags_a_state_dir_of_another_tree(
    mirror: Mirror,
    rsync_pair: tuple[RsyncDaemon, RsyncDaemon],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert mirror.run(command="sync run-id=a").report["status"] == "ok"
    other = _second(tmp_path, rsync_pair, STATE_DIR=str(mirror.state))
    doctor(str(other.config), str(tmp_path), R1, [])
    out = capsys.readouterr().out
    assert f"FAIL  STATE_DIR {mirror.state} holds the state of this TO {other.to}" in out
    assert f"(bound to {mirror.to.resolve()})" in out
    assert "fix: give this config a STATE_DIR= of its own" in out
