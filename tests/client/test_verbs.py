"""The ``version`` and ``status`` verbs, and the command line outside sshd."""

from __future__ import annotations

from tests.client.conftest import Mirror


def test_version_verb(bare_mirror: Mirror) -> None:
    rep = bare_mirror.run(command="version run-id=v").report
    assert rep["status"] == "ok" and rep["verb"] == "version" and rep["run_id"] == "v"
    assert rep["client_version"] and rep["rsync_version"]
    assert not (bare_mirror.to / ".clam-clientsync").exists()


def test_status_before_any_sync_describes_the_served_tree(bare_mirror: Mirror) -> None:
    res = bare_mirror.run(command="status")
    rep = res.report
    assert res.rc == 0 and rep["verb"] == "status" and rep["databases"] == {}
    assert rep["warnings"] == ["no sync has completed yet"]


def test_help_and_version_flags(bare_mirror: Mirror) -> None:
    assert "usage: clam-clientsync" in bare_mirror.run(argv=["--help"]).stdout
    assert bare_mirror.run(argv=["--version"]).stdout.strip()


def test_rsync_missing_is_a_config_error(bare_mirror: Mirror) -> None:
    bare_mirror.write_config(RSYNC="/nonexistent/rsync")
    res = bare_mirror.run()
    assert res.rc == 78 and "rsync not found" in res.report["error"]["message"]


def test_old_rsync_is_a_warning(bare_mirror: Mirror, tmp_path) -> None:  # type: ignore[no-untyped-def]
    old = tmp_path / "old-rsync"
    old.write_text('#!/bin/sh\necho "rsync  version 3.2.3  protocol version 31"\n')
    old.chmod(0o755)
    bare_mirror.write_config(RSYNC=str(old))
    rep = bare_mirror.run(command="version").report
    assert rep["rsync_version"] == "3.2.3"
    assert any("older than 3.4.0" in w for w in rep["warnings"])
