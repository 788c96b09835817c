"""The inventory's ``https`` field: a boundary (the team types it, a registration may carry
it), so any text is a URL the monitor can shake hands with, or one error naming the field."""

from __future__ import annotations

from urllib.parse import urlsplit

import tomlkit
from hypothesis import given
from hypothesis import strategies as st

from syncd.inventory.model import InventoryError, parse_inventory

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq0gZ7wI0nR0b7eQq0k9v3bq2yqLx1m6y1c7J8Vb3aT"


def _inventory(https: str) -> str:
    value = tomlkit.item(https).as_string()  # any text, written as TOML would hold it
    return (
        f'[[mirrors]]\nname = "m.example"\nhost = "192.0.2.1"\ncountry = "PL"\n'
        f'host_keys = ["{KEY}"]\nhttps = {value}\n'
    )


@given(
    st.one_of(
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=80),
        st.from_regex(r"[a-z0-9.:\[\]-]{1,30}(:[0-9]{1,6})?/?", fullmatch=True),
    )
)
def test_any_text_is_a_url_or_one_error(text: str) -> None:
    try:
        inv = parse_inventory("allow_private_addresses = true\n" + _inventory("https://" + text))
    except InventoryError as err:
        assert "\n" not in str(err)
        return
    url = inv.mirrors[0].https
    assert url is not None
    parts = urlsplit(url)
    assert parts.scheme == "https" and parts.hostname and not parts.path
    assert parts.port is None or 1 <= parts.port <= 65535
    assert not any(c.isspace() for c in url)


def test_an_unknown_key_still_is_an_error() -> None:
    try:
        parse_inventory(_inventory("https://m.example").replace("https =", "htps ="))
    except InventoryError as err:
        assert "unknown key 'htps': did you mean 'https'?" in str(err)
    else:
        raise AssertionError("htps accepted")
