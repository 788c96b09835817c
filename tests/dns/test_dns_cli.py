"""syncd dns push end to end: the record decides, the real BIND 9 server holds the result."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devtools.harness.cvd import write_release
from devtools.harness.documents import LAB_INVENTORY, write_secret
from devtools.harness.named import Named
from devtools.harness.record import record_checks, record_publish
from syncd.cli import app
from syncd.cli.dns import print_result
from syncd.dns.gate import GateVerdict
from syncd.dns.steps import Step, StepResult
from syncd.dns.update import DnsUpdate

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq0gZ7wI0nR0b7eQq0k9v3bq2yqLx1m6y1c7J8Vb3aT"
RELEASE = {"daily": 28034, "main": 62, "bytecode": 335}
MIRRORS = [
    ("a.example", "127.0.1.1", "PL"),
    ("b.example", "127.0.1.2", "PL"),
    ("c.example", "127.0.2.1", "DE"),
]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Path, Named, Path]]:
    source = tmp_path / "source"
    write_release(source, RELEASE["daily"])
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(
        LAB_INVENTORY
        + "".join(
            f'[[mirrors]]\nname = "{n}"\nhost = "{h}"\ncountry = "{c}"\nhost_keys = ["{KEY}"]\n\n'
            for n, h, c in MIRRORS
        )
    )
    with Named(tmp_path / "named") as named:
        secret = tmp_path / "tsig.secret"
        write_secret(secret, named.secret + "\n")
        config = tmp_path / "syncd.toml"
        config.write_text(f"""
inventory = "{inventory}"
state = "{tmp_path / "state.sqlite"}"
source_tree = "{source}"
[dns]
server = "{named.host}"
port = {named.port}
key_name = "{named.key_name}"
key_secret_file = "{secret}"
clamav_version = "1.4.3"
gate_share = 0.9
""")
        yield config, named, tmp_path / "state.sqlite"


def _published(state: Path, ok: dict[str, bool], release: dict[str, int] = RELEASE) -> None:
    record_publish(state, ok, release)


def checked(state: Path, names: list[str], release: dict[str, int] = RELEASE) -> None:
    """The monitor saw `names` serve `release` over HTTP just now."""
    record_checks(state, names, release)


def _push(config: Path, *extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    r = CliRunner().invoke(app, ["dns", "push", "--json", "--config", str(config), *extra])
    return r.exit_code, (
        json.loads(r.stdout) if r.stdout.strip().startswith("{") else {"out": r.output}
    )


def test_gate_rotation_txt_and_idempotence(setup: tuple[Path, Named, Path]) -> None:
    config, named, state = setup
    # no HTTP URL in this inventory: the monitor's checks are the HTTP evidence
    _published(state, {"a.example": True, "b.example": False, "c.example": True})
    checked(state, ["a.example", "c.example"])
    code, result = _push(config)
    assert code == 0, result
    assert not result["gate"]["open"]
    assert result["gate"]["held_back_by"] == ["b.example"]
    assert "2 of 3 mirrors serve the release (67% < 90%)" in result["gate"]["reason"]
    assert named.dig("db.pl", "A") == ["127.0.1.1"]  # b is held out of rotation
    assert named.dig("db.de", "A") == ["127.0.2.1"]
    assert named.dig("current.cvd", "TXT") == []  # the old (here: no) record stays

    _published(state, {"b.example": True})
    checked(state, ["b.example"])
    code, result = _push(config, "--dry-run")
    assert code == 0 and result["dry_run"] and not result["sent"]
    assert named.dig("current.cvd", "TXT") == []
    code, result = _push(config)
    assert code == 0 and result["gate"]["open"] and result["sent"]
    assert named.dig("db.pl", "A") == ["127.0.1.1", "127.0.1.2"]
    [txt] = named.dig("current.cvd", "TXT")
    assert txt.strip('"').split(":")[:3] == ["1.4.3", "62", "28034"]
    assert txt.strip('"').split(":")[5:] == ["90", "0", "335"]

    code, result = _push(config)
    assert code == 0 and result["changes"] == []  # idempotent: nothing sent the second time
    rows = (
        sqlite3.connect(state).execute("SELECT name, rdtype, outcome FROM dns_changes").fetchall()
    )
    assert ("current.cvd", "TXT", "sent") in rows


def test_txt_never_goes_backwards(setup: tuple[Path, Named, Path]) -> None:
    config, named, state = setup
    from syncd.dns.plan import Change
    from syncd.dns.server import DnsServer, send_update

    server = DnsServer(named.host, named.port, named.zone, named.key_name, named.secret)
    stale = '"1.4.3:62:28040:1800000000:0:90:0:335"'  # written, never compared (noqa: date)
    send_update(server, [Change("current.cvd", "TXT", (stale,))])
    _published(state, {"a.example": True, "b.example": True, "c.example": True})
    checked(state, [n for n, _, _ in MIRRORS])
    code, result = _push(config)
    assert code == 2
    assert "TXT would go backwards: daily 28040 -> 28034" in result["out"]


def test_wrong_key_is_reported_and_recorded(setup: tuple[Path, Named, Path]) -> None:
    config, _, state = setup
    write_secret(config.parent / "tsig.secret", "c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1rZXk=\n")
    _published(state, {"a.example": True, "b.example": True, "c.example": True})
    checked(state, [n for n, _, _ in MIRRORS])
    code, result = _push(config)
    assert code == 1, result
    assert "rejected TSIG key" in result["error"]
    rows = sqlite3.connect(state).execute("SELECT outcome FROM dns_changes").fetchall()
    assert rows and all(r[0].startswith("failed: the server rejected TSIG key") for r in rows)


def test_missing_dns_table_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "syncd.toml"
    config.write_text("")
    r = CliRunner().invoke(app, ["dns", "render", "--config", str(config)])
    assert r.exit_code == 2
    assert "no [dns] table in syncd.toml" in r.output


def test_render_is_a_valid_zone_fragment_with_fallback_said(
    setup: tuple[Path, Named, Path],
) -> None:
    import dns.zone

    config, _, state = setup
    _published(state, {"a.example": True, "b.example": True, "c.example": False})
    checked(state, ["a.example", "b.example"])
    r = CliRunner().invoke(app, ["dns", "render", "--config", str(config)])
    assert r.exit_code == 0, r.output
    assert "; db.de: no eligible mirror in DE: using a.example, b.example" in r.output
    assert "; gate: closed: 2 of 3 mirrors serve the release (67% < 90%)" in r.output
    head = "$ORIGIN clamav.net.\n@ 300 IN SOA ns1 hostmaster 1 3600 600 86400 60\n@ 300 IN NS ns1\n"
    zone = dns.zone.from_text(head + r.output, origin="clamav.net", relativize=True)
    pool = zone.find_rdataset("db.de", "A")
    assert sorted(r.to_text() for r in pool) == ["127.0.1.1", "127.0.1.2"]
    assert zone.get_rdataset("current.cvd", "TXT") is None


def _failed(steps: tuple[StepResult, ...]) -> DnsUpdate:
    failed = next(r for r in steps if not r.ok)
    return DnsUpdate(
        GateVerdict(True, 1.0, ("a", "b", "c"), (), (), "3 of 3 active mirrors serve it", 0.8),
        [],
        True,
        False,
        f"{failed.step.value} step failed: {failed.detail}",
        steps,
        "TXT 28035 announced 2 s after the gate opened: the pools' TTL is 1 s",
    )


def test_a_settle_failing_after_the_txt_says_the_txt_moved(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Only the settle after the TXT failed: the primary moved it, a secondary lags. (On the
    code before, the output said the TXT was not moved.)"""
    lag = (
        "secondary 127.0.0.1:5301 (clamav.net) did not serve the new serial within 20 s: "
        "it still serves the old TXT; check its zone transfers"
    )
    txt = '"0.103.12:62:28035:1700000000:1:90:1:335"'  # printed only (noqa: date)
    print_result(
        _failed(
            (
                StepResult(Step.SHRINK, True, "2 pool change(s) sent", 1.0),
                StepResult(Step.SETTLE, True, "2 server(s) serve the change", 2.0),
                StepResult(Step.SETTLE, False, lag, 3.0),
                StepResult(Step.ANNOUNCE, True, f"TXT {txt}", 3.0),
            )
        ),
        as_json=False,
    )
    out, err = capsys.readouterr()
    assert "TXT 28035 announced 2 s after the gate opened" in out
    assert "was not moved" not in err
    assert f"the TXT record moved on the primary (TXT {txt})" in err
    assert "secondary 127.0.0.1:5301 (clamav.net) did not serve the new serial" in err
    # a step failing before the TXT: it was not moved
    print_result(
        _failed((StepResult(Step.SHRINK, False, "view cc-de: update refused", 1.0),)),
        as_json=False,
    )
    _, err = capsys.readouterr()
    assert "shrink step failed: view cc-de: update refused; the TXT record was not moved" in err
