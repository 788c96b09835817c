"""The inventory's model: parsing with defaults, exact errors naming file, mirror, field and
fix, and edits. Pure, no I/O."""

from __future__ import annotations

import pytest

from syncd.inventory.edits import render_inventory
from syncd.inventory.model import InventoryError, parse_inventory, updated, without_mirror

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE4g3v7tDPFq4GeL5Gm5cBVJzvL7xiqsC6kdjrC6Ldqp"
GOOD = f"""
allow_private_addresses = true  # 192.0.2.0/24 is for documentation, not global

[[mirrors]]
name = "a.example.org"
host = "a.example.org"
country = "PL"
admins = ["Jan <jan@example.org>"]
host_keys = ["{KEY} comment"]
http = "http://a.example.org/"

[[mirrors]]
name = "b.example.org"
host = "192.0.2.7"
port = 2222
country = "DE"
host_keys = ["{KEY}"]
active = false
"""


def test_inventory_parses_with_defaults_and_round_trips() -> None:
    inv = parse_inventory(GOOD, "mirrors.toml")
    a, _b = inv.mirrors
    assert (a.port, a.user, a.active, a.http) == (22, "clamavdb", True, "http://a.example.org")
    assert a.host_keys == [KEY]  # comment dropped
    assert [m.name for m in inv.active()] == ["a.example.org"]
    assert parse_inventory(render_inventory(inv)) == inv


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("port = 2222", 'port = "ssh"'),
            "mirrors.toml: mirror 'b.example.org': field 'port': Input should be a valid "
            "integer, unable to parse string as an integer: use an integer between 1 and 65535 "
            "(default 22)",
        ),
        (
            ('country = "DE"', 'country = "Germany"'),
            "mirrors.toml: mirror 'b.example.org': field 'country': not a two-letter country "
            "code: use a two-letter ISO 3166 code in capitals, such as PL",
        ),
        (
            ("active = false", "activ = false"),
            "mirrors.toml: mirror 'b.example.org': unknown key 'activ': did you mean 'active'? "
            "rename or remove it (known keys: "
            "name, host, port, user, country, admins, notify, pending, host_keys, http, https, "
            "active, hub, hubs, maintenance)",
        ),
        (
            (f'host_keys = ["{KEY}"]\nactive', "active"),
            "mirrors.toml: mirror 'b.example.org': field 'host_keys': no host key pinned: use a "
            'non-empty list of OpenSSH public keys, such as ["ssh-ed25519 AAAA..."]; get one '
            "with ssh-keyscan and confirm it with the admin",
        ),
        (
            (f'host_keys = ["{KEY}"]\nactive', "host_keys = []\nactive"),
            "mirrors.toml: mirror 'b.example.org': field 'host_keys': no host key pinned: use a "
            'non-empty list of OpenSSH public keys, such as ["ssh-ed25519 AAAA..."]; get one '
            "with ssh-keyscan and confirm it with the admin",
        ),
        (
            ('http = "http://a.example.org/"', 'http = "ftp://a"'),
            "mirrors.toml: mirror 'a.example.org': field 'http': not an http(s) URL: use the "
            "mirror's base URL such as http://clamav.example.org",
        ),
        (
            ('name = "b.example.org"', 'name = "a.example.org"'),
            "mirrors.toml: mirror 'a.example.org': field 'name': defined twice: give each "
            "mirror a unique name",
        ),
    ],
)
def test_inventory_errors_name_file_mirror_field_and_fix(
    change: tuple[str, str], message: str
) -> None:
    old, new = change
    assert old in GOOD
    with pytest.raises(InventoryError) as err:
        parse_inventory(GOOD.replace(old, new, 1), "mirrors.toml")
    assert str(err.value) == message


def test_inventory_edits() -> None:
    inv = parse_inventory(GOOD)
    inv = updated(inv, "b.example.org", active=True)
    assert len(inv.active()) == 2
    with pytest.raises(InventoryError, match="field 'host_keys'"):
        updated(inv, "a.example.org", host_keys=["not a key"])
    assert [m.name for m in without_mirror(inv, "a.example.org").mirrors] == ["b.example.org"]
    with pytest.raises(InventoryError, match="no mirror named 'zz'"):
        without_mirror(inv, "zz")
