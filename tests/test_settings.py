"""syncd.toml: paths relative to the file, errors naming the field and the fix, where it is
looked for. Pure, no I/O."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.errors import ConfigError
from syncd.settings import candidates, parse_config


def test_config_paths_relative_to_file_and_errors(tmp_path: Path) -> None:
    cfg = parse_config(
        'key = "k"\nstate = "/var/s.db"\n[policy]\nmax_attempts = 2\n', str(tmp_path / "syncd.toml")
    )
    assert cfg.key == tmp_path / "k" and str(cfg.state) == "/var/s.db"
    assert cfg.policy.max_attempts == 2
    with pytest.raises(ConfigError, match=r"syncd.toml: unknown key 'policy.retries': remove it"):
        parse_config("[policy]\nretries = 3\n")
    with pytest.raises(ConfigError, match=r"field 'policy\.run_timeout'"):
        parse_config("[policy]\nrun_timeout = -1\n")
    assert [str(p) for p in candidates(Path("/w"), Path("/h"))] == [
        "/w/etc/syncd.toml",
        "/h/.config/syncd/syncd.toml",
        "/etc/syncd/syncd.toml",
    ]
