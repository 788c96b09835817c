"""syncd.toml: paths relative to the file, errors naming the field and the fix, where it is
looked for; a source's name read alike in syncd.toml and pushers.toml. Pure, no I/O."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pushwire.keyfile import is_source
from syncd.errors import ConfigError
from syncd.keys.keyring import KeyringError, load_keyring
from syncd.settings import candidates, parse_config
from tests.keys.test_keys import _toml


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


def _basic_string(text: str) -> str:
    """`text` as a TOML basic string: quotes, backslashes and control characters escaped."""
    escaped = "".join(
        f"\\u{ord(c):04x}" if c in '"\\' or ord(c) < 0x20 or ord(c) == 0x7F else c for c in text
    )
    return f'"{escaped}"'


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.-]{0,60}", fullmatch=True),
        st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40),
    )
)
def test_a_source_name_is_judged_alike_in_syncd_toml_and_pushers_toml(name: str) -> None:
    """``[[sources]] name`` and pushers.toml's ``source`` are the same kind of name: any text
    is either a source in both or refused in both with the one fix (`check_source`)."""
    quoted = _basic_string(name)
    fix = "a host name such as rsync1.clamav.net"
    config = f"[[sources]]\nname = {quoted}\nkey = 'k'\n"
    keyring = _toml().replace('"rsync1.clamav.net"', quoted, 1)
    if is_source(name):
        assert parse_config(config).sources[0].name == name
        assert load_keyring(keyring).keys[0].source == name
        return
    with pytest.raises(ConfigError) as bad_config:
        parse_config(config)
    with pytest.raises(KeyringError) as bad_keyring:
        load_keyring(keyring)
    assert f"field 'sources.0.name': {fix}:" in str(bad_config.value)
    assert str(bad_keyring.value) == f"keys/pushers.toml: keys.0.source: {fix}"
