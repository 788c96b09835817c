"""``[announce]`` and ``[releases]`` in syncd.toml: validated, one-line errors naming the fix."""

from __future__ import annotations

import pytest

from syncd.errors import ConfigError
from syncd.settings import parse_config


def test_announce_and_releases_read() -> None:
    cfg = parse_config(
        '[announce]\nto = "clamav-virusdb@lists.example.org"\nsender = "db@example.org"\n'
        "[releases]\nt90_limit_h = 0.5\n"
    )
    assert cfg.announce is not None and cfg.announce.to == "clamav-virusdb@lists.example.org"
    assert cfg.releases.t90_limit_h == 0.5
    assert parse_config("").announce is None and parse_config("").releases.t90_limit_h == 2.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[announce]\nto = "a@example.org\\nBcc: x@example.org"\nsender = "d@example.org"\n',
            "field 'announce.to'",
        ),
        ('[announce]\nto = "a@example.org"\n', "field 'announce.sender'"),
        (
            '[announce]\nto = "a@example.org"\nsender = "d@example.org"\nsignatur = "x"\n',
            "did you mean 'signature'",
        ),
        ("[releases]\nt90_limit_h = 0\n", "field 'releases.t90_limit_h'"),
        ("[releases]\nt90_limit_h = 1e400\n", "field 'releases.t90_limit_h'"),
    ],
)
def test_bad_tables_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_config(text)
    assert "\n" not in str(caught.value)
