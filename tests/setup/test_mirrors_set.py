"""`syncd mirrors set NAME KEY=VALUE...`: what registration fixes (port 22, user clamavdb,
http://NAME) changed and validated, comments kept, and hostile values refused with the file
left as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from syncd.cli import app
from syncd.inventory.model import parse_inventory

runner = CliRunner()
MAIL = (
    "clamav.example.org ip address: 192.0.2.7 country: Poland admin: Jane Doe <jane@example.org>\n"
)


@pytest.fixture
def inv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "mirrors.toml"
    path.write_text("# the team's notes stay\nallow_private_addresses = true  # 192.0.2.0/24\n")
    done = runner.invoke(app, ["mirrors", "register", "-", "--inventory", str(path)], input=MAIL)
    assert done.exit_code == 0, done.output
    assert "syncd mirrors set NAME port=" in done.output
    return path


def mirror(path: Path) -> dict[str, object]:
    return parse_inventory(path.read_text()).named("clamav.example.org").model_dump()


def test_register_then_set_port_user_http(inv: Path) -> None:
    assert mirror(inv)["port"] == 22 and mirror(inv)["user"] == "clamavdb"
    done = runner.invoke(
        app,
        [
            "mirrors",
            "set",
            "clamav.example.org",
            "port=2222",
            "user=clamav",
            "http=https://mirror.example.org/clamav/",
            "country=Germany",
            "notify=alerts@example.org, ops@example.org",
            "--inventory",
            str(inv),
        ],
    )
    assert done.exit_code == 0, done.output
    assert done.output.startswith("clamav.example.org: set port=2222, user=clamav")
    m = mirror(inv)
    assert (m["port"], m["user"], m["http"], m["country"]) == (
        2222,
        "clamav",
        "https://mirror.example.org/clamav",
        "DE",
    )
    assert m["notify"] == ["alerts@example.org", "ops@example.org"]
    assert m["pending"] is True and m["admins"] == ["Jane Doe <jane@example.org>"]
    assert inv.read_text().startswith("# the team's notes stay\n")
    removed = runner.invoke(
        app, ["mirrors", "set", "clamav.example.org", "http=", "--inventory", str(inv)]
    )
    assert removed.exit_code == 0, removed.output
    assert mirror(inv)["http"] is None and "http" not in inv.read_text().split("[[mirrors]]")[1]


@pytest.mark.parametrize(
    ("words", "says"),
    [
        (["port=0"], "field 'port': Input should be greater than or equal to 1"),
        (["port=65536"], "field 'port'"),
        (["port=22x"], "port '22x' is not a number: write e.g. port=2222"),
        (["port=²"], "is not a number"),
        (["user=root; rm -rf /"], "field 'user': not a Unix account name"),
        (['user=x"\n[[mirrors]]\nname = "evil.example"'], "holds a line break"),
        (["host=-oProxyCommand=touch /tmp/pwned"], "field 'host': not a host name or address"),
        (["host=a b"], "field 'host'"),
        (["http=javascript:alert(1)"], "field 'http': not an http(s) URL"),
        (["http=http://x.example/\x00"], "holds a line break or NUL"),
        (["country=Atlantis"], "country 'Atlantis' is not a country name or ISO code"),
        (["pending=false"], "'pending' cannot be set: use one of host, port"),
        (["host_keys=ssh-ed25519 AAAA"], "'host_keys' cannot be set"),
        (["name=other.example"], "'name' cannot be set"),
        (["port=2222", "port=2223"], "port given twice"),
        (["port"], "'port' is not KEY=VALUE"),
        ([], "Missing argument"),
    ],
)
def test_bad_settings_change_nothing(inv: Path, words: list[str], says: str) -> None:
    before = inv.read_bytes()
    done = runner.invoke(
        app, ["mirrors", "set", "clamav.example.org", *words, "--inventory", str(inv)]
    )
    assert done.exit_code == 2, done.output
    assert says in done.output
    # one line, naming the problem and the fix (click's own usage errors come with a usage line)
    assert done.output.count("\n") == 1 or done.output.startswith("Usage:"), done.output
    assert inv.read_bytes() == before


def test_unknown_mirror(inv: Path) -> None:
    done = runner.invoke(
        app, ["mirrors", "set", "nope.example", "port=2222", "--inventory", str(inv)]
    )
    assert done.exit_code == 2
    assert "no mirror named 'nope.example': see 'syncd mirrors list'" in done.output


def test_set_hub_fields_and_hubs_then_remove_them(inv: Path) -> None:
    other = (
        "hub-client.example.org ip address: 192.0.2.8 country: Poland admin: A <a@example.org>\n"
    )
    done = runner.invoke(app, ["mirrors", "register", "-", "--inventory", str(inv)], input=other)
    assert done.exit_code == 0, done.output

    def setting(name: str, *words: str) -> tuple[int, str]:
        done = runner.invoke(app, ["mirrors", "set", name, *words, "--inventory", str(inv)])
        return done.exit_code, done.output

    # a mirror may list only mirrors that are hubs
    before = inv.read_bytes()
    code, out = setting("hub-client.example.org", "hubs=clamav.example.org")
    assert code == 2 and "is not a hub" in out and inv.read_bytes() == before
    code, out = setting("clamav.example.org", "hub.max_transfers=30")
    assert code == 0 and "set hub.max_transfers=30" in out, out
    assert mirror(inv)["hub"] == {"max_transfers": 30, "weight": 1}
    code, _ = setting("clamav.example.org", "hub.weight=2")  # the other field stays
    assert code == 0 and mirror(inv)["hub"] == {"max_transfers": 30, "weight": 2}
    assert "hub = {" in inv.read_text() and inv.read_text().startswith("# the team's notes stay")
    code, out = setting("hub-client.example.org", "hubs=clamav.example.org")
    assert code == 0, out
    client = parse_inventory(inv.read_text()).named("hub-client.example.org")
    assert client.hubs == ["clamav.example.org"]
    # a hub that is listed cannot stop being one
    before = inv.read_bytes()
    code, out = setting("clamav.example.org", "hub=")
    assert code == 2 and "hub-client.example.org" in out and inv.read_bytes() == before
    assert setting("hub-client.example.org", "hubs=")[0] == 0
    assert parse_inventory(inv.read_text()).named("hub-client.example.org").hubs is None
    assert setting("clamav.example.org", "hub=")[0] == 0 and mirror(inv)["hub"] is None


@pytest.mark.parametrize(
    ("words", "says"),
    [
        (["hub.max_transfers=0"], "greater than or equal to 1"),
        (["hub.weight=99999999"], "less than or equal to 10000"),
        (["hub.weight=-1"], "is not a number"),
        (["hub.weight=1e9"], "is not a number"),
        (["hub.weight=9999999999999999999999"], "is not a number"),
        (["hub.speed=3"], "'hub.speed' cannot be set: use one of"),
        (["hub=yes"], "write hub.max_transfers=N and hub.weight=N"),
        (["hub=", "hub.weight=2"], "given together"),
        (["hub.weight=2", "hub.weight=3"], "given twice"),
        (["hubs=clamav.example.org"], "is itself"),
    ],
)
def test_bad_hub_settings_change_nothing(inv: Path, words: list[str], says: str) -> None:
    before = inv.read_bytes()
    done = runner.invoke(
        app, ["mirrors", "set", "clamav.example.org", *words, "--inventory", str(inv)]
    )
    assert done.exit_code == 2, done.output
    assert says in done.output, done.output
    assert inv.read_bytes() == before


def test_set_https_then_remove_it(inv: Path) -> None:
    """Where the mirror serves https: the monitor checks its certificate for that name."""
    done = runner.invoke(
        app,
        [
            "mirrors",
            "set",
            "clamav.example.org",
            "https=https://clamav.example.org/",
            "--inventory",
            str(inv),
        ],
    )
    assert done.exit_code == 0, done.output
    assert mirror(inv)["https"] == "https://clamav.example.org"
    assert 'https = "https://clamav.example.org"' in inv.read_text()
    assert inv.read_text().startswith("# the team's notes stay\n")
    removed = runner.invoke(
        app, ["mirrors", "set", "clamav.example.org", "https=", "--inventory", str(inv)]
    )
    assert removed.exit_code == 0, removed.output
    assert mirror(inv)["https"] is None and "https" not in inv.read_text()


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("http://clamav.example.org", "not https://NAME[:PORT] (no path)"),
        ("https://clamav.example.org/clamav/", "not https://NAME[:PORT] (no path)"),
        ("https://user:pw@clamav.example.org", "not https://NAME[:PORT] (no path)"),
        ("https://clamav.example.org:0", "port 0 is no port"),
        ("https://clamav.example.org:99999", "Port out of range"),
        ("https://clamav..example.org", "not a valid host name"),
        ("https://-oProxyCommand=x", "starts with '-'"),
        ("https://clamav.example.org?x=1", "not https://NAME[:PORT]"),
        ("https://clamav.example.org\u202e", "not a valid host name"),
        ("https://0.0.0.0", "is the unspecified address"),
        ("true", "not https://NAME[:PORT]"),
    ],
)
def test_bad_https_changes_nothing(inv: Path, value: str, says: str) -> None:
    before = inv.read_bytes()
    done = runner.invoke(
        app, ["mirrors", "set", "clamav.example.org", f"https={value}", "--inventory", str(inv)]
    )
    assert done.exit_code == 2, done.output
    assert "field 'https'" in done.output and says in done.output, done.output
    assert inv.read_bytes() == before


def test_add_with_https(tmp_path: Path) -> None:
    path = tmp_path / "mirrors.toml"
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq0gZ7wI0nR0b7eQq0k9v3bq2yqLx1m6y1c7J8Vb3aT"
    done = runner.invoke(
        app,
        [
            "mirrors",
            "add",
            "clamav.example.org",
            "--host",
            "clamav.example.org",
            "--country",
            "PL",
            "--host-key",
            key,
            "--https",
            "https://clamav.example.org",
            "--inventory",
            str(path),
        ],
    )
    assert done.exit_code == 0, done.output
    m = parse_inventory(path.read_text()).named("clamav.example.org")
    assert m.https == "https://clamav.example.org"
