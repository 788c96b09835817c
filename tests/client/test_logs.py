"""Logs: archvsync line shape, escaped control characters, rotation, redaction."""

from __future__ import annotations

import re
from pathlib import Path

from clientside import logsetup


def test_line_shape_escaping_and_redaction(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    logger = logsetup.setup(["s3cret"], stderr=False)
    logsetup.add_file(logger, str(log), ["s3cret"])
    logger.info("hello\nforged line\x1b[31m pw=%s back\\slash", "s3cret")
    logsetup.close(logger)
    (line,) = log.read_text().splitlines()
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \S+ clam-clientsync\[\d+\]: ", line)
    assert line.endswith("hello\\x0aforged line\\x1b[31m pw=*** back\\\\slash")


def test_log_file_rotates(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(logsetup, "LOG_MAX_BYTES", 2000)
    log = tmp_path / "c.log"
    logger = logsetup.setup([], stderr=False)
    logsetup.add_file(logger, str(log))
    for i in range(200):
        logger.info("line %d %s", i, "x" * 50)
    logsetup.close(logger)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["c.log", "c.log.1", "c.log.2", "c.log.3", "c.log.4", "c.log.5"]
    assert all(p.stat().st_size <= 2200 for p in tmp_path.iterdir())


def test_unknown_config_key_is_logged_and_reported(tmp_path: Path) -> None:
    from tests.client.conftest import make_mirror

    m = make_mirror(tmp_path, None)
    m.write_config(FROBNICATE="1")
    res = m.run(command="version")
    assert any("FROBNICATE" in w for w in res.report["warnings"])
    assert "unknown key FROBNICATE" in res.stderr
    assert "unknown key FROBNICATE" in m.log_text()
