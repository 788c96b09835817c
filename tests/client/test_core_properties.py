"""Property tests of the two parsers that read untrusted or hand-written text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from clientside.core.config import ConfigError, parse_config_text
from pushwire.request import RequestError, parse_request

printable = st.text(
    st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="'").filter(
        lambda c: not 0x7F <= ord(c) <= 0x9F
    )
)


@given(printable)
def test_single_quoted_values_round_trip(value: str) -> None:
    assert parse_config_text(f"KEY='{value}'") == [(1, "KEY", value)]


@given(st.text(max_size=300))
@settings(max_examples=300)
def test_config_parser_only_ever_returns_pairs_or_config_error(text: str) -> None:
    try:
        pairs = parse_config_text(text)
    except ConfigError as exc:
        assert str(exc).startswith("line ")
        return
    for _, _, value in pairs:
        assert "$(" not in value or "'" in text  # expansion text only survives quoted


@given(st.text(max_size=2000))
@settings(max_examples=500)
def test_request_parser_only_ever_returns_a_request_or_rejects(text: str) -> None:
    try:
        req = parse_request(text)
    except RequestError:
        return
    assert req.verb in ("sync", "status", "version")
    assert all(c.isprintable() and c.isascii() for c in text)
    assert ";" not in text and "$" not in text and "\n" not in text
