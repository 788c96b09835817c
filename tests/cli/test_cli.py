"""The command line around publish: config search and checks, inventory editing, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from devtools.harness.documents import LAB_INVENTORY
from syncd.cli import app
from syncd.inventory.model import parse_inventory

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE4g3v7tDPFq4GeL5Gm5cBVJzvL7xiqsC6kdjrC6Ldqp"
runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_mirrors_add_list_show_disable_enable_pin_remove(home: Path) -> None:
    inv = home / "mirrors.toml"
    inv.write_text(LAB_INVENTORY)  # 192.0.2.0/24 is for documentation
    add = runner.invoke(
        app,
        [
            "mirrors",
            "add",
            "clamav.example.org",
            "--inventory",
            str(inv),
            "--host",
            "192.0.2.1",
            "--country",
            "PL",
            "--host-key",
            KEY,
            "--admin",
            "Jan <jan@example.org>",
            "--http",
            "http://clamav.example.org",
        ],
    )
    assert add.exit_code == 0, add.output
    listed = runner.invoke(app, ["mirrors", "list", "--inventory", str(inv)])
    assert "clamav.example.org" in listed.output and "active" in listed.output
    assert (
        runner.invoke(
            app, ["mirrors", "disable", "clamav.example.org", "--inventory", str(inv)]
        ).exit_code
        == 0
    )
    assert parse_inventory(inv.read_text()).mirrors[0].active is False
    assert (
        runner.invoke(
            app, ["mirrors", "enable", "clamav.example.org", "--inventory", str(inv)]
        ).exit_code
        == 0
    )
    other = KEY[:-4] + "AAAA"
    pin = runner.invoke(
        app, ["mirrors", "pin", "clamav.example.org", "--inventory", str(inv), "--host-key", other]
    )
    assert pin.exit_code == 0, pin.output
    assert parse_inventory(inv.read_text()).mirrors[0].host_keys == [other]
    show = runner.invoke(app, ["mirrors", "show", "clamav.example.org", "--inventory", str(inv)])
    assert "country: PL" in show.output
    bad = runner.invoke(
        app,
        [
            "mirrors",
            "add",
            "x.example.org",
            "--inventory",
            str(inv),
            "--host",
            "h",
            "--country",
            "Poland",
            "--host-key",
            KEY,
        ],
    )
    assert bad.exit_code == 2
    assert "field 'country': not a two-letter country code" in bad.output
    assert (
        runner.invoke(
            app, ["mirrors", "remove", "clamav.example.org", "--inventory", str(inv)]
        ).exit_code
        == 0
    )
    assert parse_inventory(inv.read_text()).mirrors == []


COMMENTED = f"""# pushsync mirror inventory: kept by hand and by syncd mirrors
# Ask the DB team before adding a mirror.
allow_private_addresses = true  # 192.0.2.0/24 is for documentation

[[mirrors]]
name = "a.example.org"   # the first volunteer
host = "192.0.2.1"
country   = "PL"
host_keys = ["{KEY}"]  # confirmed by phone, 2026-01-05

# b: slow link, be patient
[[mirrors]]
name = "b.example.org"
host = "192.0.2.2"
country = "DE"
host_keys = ["{KEY}"]
"""


def test_inventory_edits_keep_comments_and_layout(home: Path) -> None:
    inv = home / "mirrors.toml"
    inv.write_text(COMMENTED)
    other = KEY[:-4] + "AAAA"

    def cli(*args: str) -> None:
        result = runner.invoke(app, ["mirrors", *args, "--inventory", str(inv)])
        assert result.exit_code == 0, result.output

    cli("pin", "a.example.org", "--host-key", other)
    cli("disable", "b.example.org")
    cli("add", "c.example.org", "--host", "192.0.2.3", "--country", "FR", "--host-key", KEY)
    text = inv.read_text()
    # every line of the operator's file is still there, as it was, except the two edits
    before = COMMENTED.replace(
        f'["{KEY}"]  # confirmed by phone', f'["{other}"]  # confirmed by phone'
    ).replace('country = "DE"\nhost_keys = ["KEY"]\n'.replace("KEY", KEY), "")
    assert before != COMMENTED
    assert text.startswith(
        before + f'country = "DE"\nhost_keys = ["{KEY}"]\nactive = false\n'
        '\n[[mirrors]]\nname = "c.example.org"\n'
    )
    mirrors = parse_inventory(text).mirrors
    assert [(m.name, m.active) for m in mirrors] == [
        ("a.example.org", True),
        ("b.example.org", False),
        ("c.example.org", True),
    ]
    assert mirrors[0].host_keys == [other]
    cli("remove", "c.example.org")
    assert inv.read_text().rstrip("\n") == text[: text.index('\n\n[[mirrors]]\nname = "c.')]


def test_config_search_order_and_check(home: Path) -> None:
    user = home / "home" / ".config" / "syncd"
    user.mkdir(parents=True)
    (user / "syncd.toml").write_text('inventory = "user-mirrors.toml"\n')
    (home / "etc").mkdir()
    (home / "etc" / "syncd.toml").write_text('inventory = "mirrors.toml"\n')
    (home / "etc" / "mirrors.toml").write_text("")
    result = runner.invoke(app, ["config", "check"])
    assert result.exit_code == 0, result.output
    assert f"config: {home / 'etc' / 'syncd.toml'}\n" in result.output  # ./etc before ~/.config
    assert "0 mirrors, 0 active: ok" in result.output
    explicit = home / "other.toml"
    explicit.write_text("[policy]\nmax_attempts = 0\n")
    bad = runner.invoke(app, ["config", "check", "--config", str(explicit)])
    assert bad.exit_code == 2
    assert (
        bad.output.strip().splitlines()
        == [
            f"syncd: {explicit}: field 'policy.max_attempts': Input should be greater than or "
            "equal to 1: use see docs/publishing.md"
        ]
        or "field 'policy.max_attempts'" in bad.output
    )


def test_publish_with_bad_inventory_exits_2_with_one_exact_line(home: Path) -> None:
    inv = home / "mirrors.toml"
    inv.write_text(
        '[[mirrors]]\nname = "m1.example.org"\nhost = "h"\ncountry = "PL"\n'
        f'host_keys = ["{KEY}"]\nport = 70000\n'
    )
    result = runner.invoke(
        app,
        [
            "publish",
            "--inventory",
            str(inv),
            "--key",
            "k",
            "--state",
            "s.db",
            "--expect",
            "daily=1",
        ],
    )
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"syncd: {inv}: mirror 'm1.example.org': field 'port': Input should be less than or "
        "equal to 65535: use an integer between 1 and 65535 (default 22)"
    )


def test_publish_needs_key_and_a_release(home: Path) -> None:
    inv = home / "mirrors.toml"
    inv.write_text("")
    missing = runner.invoke(app, ["publish", "--inventory", str(inv), "--state", "s.db"])
    assert missing.exit_code == 2
    assert "--key is required (or set 'key' in syncd.toml)" in missing.output
    key = home / "key"
    key.write_text("not a key")
    key.chmod(0o600)  # a secret's mode, so that what is wrong is the content
    bad_key = runner.invoke(
        app,
        [
            "publish",
            "--inventory",
            str(inv),
            "--state",
            "s.db",
            "--key",
            str(key),
            "--expect",
            "daily=1",
        ],
    )
    assert bad_key.exit_code == 2
    assert f"cannot load the pusher key {key}" in bad_key.output


def test_pending_promotion_keeps_comments(home: Path) -> None:
    from syncd.inventory.onboarding import promote_pending

    inv = home / "mirrors.toml"
    inv.write_text(COMMENTED.replace('country = "DE"\n', 'country = "DE"\npending = true  # new\n'))
    assert promote_pending(inv, {"a.example.org", "b.example.org"}) == ["b.example.org"]
    assert inv.read_text() == COMMENTED.replace(
        'country = "DE"\n', 'country = "DE"\npending = false  # new\n'
    )
    assert promote_pending(inv, {"b.example.org"}) == []
