"""syncd monitor end to end: real nginx mirrors, the real SMTP server, the record, the page."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from devtools.harness.cvd import release_time, write_release
from devtools.harness.documents import LAB_INVENTORY
from devtools.harness.faultproxy import closed_port
from devtools.harness.nginx import Nginx
from devtools.harness.smtp import SmtpSink
from syncd.cli import app

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq0gZ7wI0nR0b7eQq0k9v3bq2yqLx1m6y1c7J8Vb3aT"


def released() -> datetime:
    """When the release these tests serve was built: 2 h ago, past the 1 h lagging grace. A
    mirror serving its version serves these bytes (the proof compares the CVDs' tails)."""
    return release_time() - timedelta(hours=2)


def _docroot(base: Path, name: str, daily: int, age_h: float) -> Path:
    root = base / name
    write_release(root, daily, build_time=released())
    (root / "timestamp").write_text(f"{int(time.time() - age_h * 3600)}\n")
    return root


def _mirror(name: str, http: str, admin: str, notify: str | None = None) -> str:
    lines = [
        "[[mirrors]]",
        f'name = "{name}"',
        'host = "127.0.0.1"',
        'country = "PL"',
        f'admins = ["{admin}"]',
        f'host_keys = ["{KEY}"]',
        f'http = "{http}"',
    ]
    if notify:
        lines.append(f'notify = ["{notify}"]')
    return "\n".join(lines) + "\n"


def _run(config: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(
        app, ["monitor", "--once", "--json", "--config", str(config), *extra]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_monitor_judges_records_mails_and_publishes(
    tmp_path: Path, nginx_factory: Callable[..., Nginx], smtp_sink: SmtpSink
) -> None:
    source = tmp_path / "source"
    # released 2 h ago: past the 1 h lagging grace configured below
    write_release(source, 28034, build_time=released())
    fresh = nginx_factory(_docroot(tmp_path, "fresh", 28034, 0.5))
    lag_root = _docroot(tmp_path, "lag", 28033, 0.5)
    lagging = nginx_factory(lag_root)
    old = nginx_factory(_docroot(tmp_path, "old", 28034, 30))
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(
        LAB_INVENTORY
        + "\n".join(
            [
                _mirror("fresh.example", fresh.base_url, "Fresh Admin <fresh@example.org>"),
                _mirror(
                    "lag.example",
                    lagging.base_url,
                    "Lag Admin <lag@example.org>",
                    notify="lag-alerts@example.org",
                ),
                _mirror("old.example", old.base_url, "Old Admin <old@example.org>"),
                _mirror(
                    "gone.example", f"http://127.0.0.1:{closed_port()}", "Gone <gone@example.org>"
                ),
            ]
        )
    )
    page, metrics = tmp_path / "www" / "index.html", tmp_path / "metrics" / "pushsync.prom"
    config = tmp_path / "syncd.toml"
    config.write_text(f"""
inventory = "{inventory}"
state = "{tmp_path / "state.sqlite"}"
source_tree = "{source}"
[monitor]
unreachable_after = 1
recover_after = 2
lagging_grace_h = 1
team = ["team@example.org"]
status_page = "{page}"
metrics = "{metrics}"
[monitor.smtp]
host = "{smtp_sink.host}"
port = {smtp_sink.port}
sender = "monitor@example.org"
""")
    first = _run(config)
    states = {m["name"]: m["state"] for m in first["mirrors"]}
    assert states == {
        "fresh.example": "fresh",
        "lag.example": "lagging",
        "old.example": "old",
        "gone.example": "unreachable",
    }
    # a first check is no change out of anything: from unknown, the fresh one mailed to nobody
    assert {t["mirror"]: (t["from"], t["to"]) for t in first["transitions"]} == {
        "fresh.example": ("unknown", "fresh"),
        "lag.example": ("unknown", "lagging"),
        "old.example": ("unknown", "old"),
        "gone.example": ("unknown", "unreachable"),
    }
    # each admin got their mail (the lagging one at its notify address), the team one digest
    rcpts = sorted(r for _, rs in smtp_sink.envelopes for r in rs)
    assert rcpts == [
        "gone@example.org",
        "lag-alerts@example.org",
        "old@example.org",
        "team@example.org",
    ]
    digest = next(m for m in smtp_sink.messages if m["To"] == "team@example.org")
    assert "3 mirror state change(s)" in digest.get_content()
    assert "1 mirror(s) checked for the first time: fresh." in digest.get_content()
    assert "from fresh" not in "".join(m.get_content() for m in smtp_sink.messages)
    assert "serves daily 28033 instead of daily 28034" in digest.get_content()
    assert "lag.example" in page.read_text()
    assert "1970" not in page.read_text()  # no "since" for a state entered at a first check
    assert 'pushsync_mirror_state{mirror="old.example",state="old"} 1' in metrics.read_text()

    # nothing changed: nothing announced again
    second = _run(config)
    assert second["transitions"] == []
    assert len(smtp_sink.messages) == 4

    # the lagging mirror catches up: back only after two good checks, then announced
    write_release(lag_root, 28034, build_time=released())
    assert _run(config)["transitions"] == []
    third = _run(config)
    assert [(t["mirror"], t["to"]) for t in third["transitions"]] == [("lag.example", "recovered")]

    db = sqlite3.connect(tmp_path / "state.sqlite")
    reasons = [
        r[0]
        for r in db.execute(
            "SELECT reason FROM monitor_transitions WHERE mirror = 'lag.example' ORDER BY id"
        )
    ]
    assert len(reasons) == 2 and "2 good checks in a row" in reasons[1]
    assert db.execute("SELECT count(*) FROM monitor_checks").fetchone()[0] == 16


def test_monitor_without_smtp_config_reports_mail_failure(
    tmp_path: Path, nginx_factory: Callable[..., Nginx]
) -> None:
    source = tmp_path / "source"
    write_release(source, 28034, build_time=released())
    old = nginx_factory(_docroot(tmp_path, "old", 28034, 30))
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(
        LAB_INVENTORY + _mirror("old.example", old.base_url, "Old <old@example.org>")
    )
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'inventory = "{inventory}"\nstate = "{tmp_path / "s.sqlite"}"\nsource_tree = "{source}"\n'
    )
    result = CliRunner().invoke(app, ["monitor", "--once", "--config", str(config)])
    assert result.exit_code == 1
    assert "no [monitor.smtp] in syncd.toml" in result.output
    # the change is recorded even though the mail could not go out
    db = sqlite3.connect(tmp_path / "s.sqlite")
    assert db.execute("SELECT new, mailed FROM monitor_transitions").fetchall() == [("old", 0)]
    # --no-mail: recorded and printed, nothing sent, exit 0
    ok = CliRunner().invoke(app, ["monitor", "--once", "--no-mail", "--config", str(config)])
    assert ok.exit_code == 0, ok.output


def test_a_mail_not_sent_is_sent_by_the_next_pass(
    tmp_path: Path, nginx_factory: Callable[..., Nginx], smtp_sink: SmtpSink
) -> None:
    """The SMTP server is down for the pass that finds a mirror old: the admin's mail stays due
    and the next pass sends it, once; the team's digest is this pass's news only. (On the code
    before, the transition was simply never mailed.)"""
    source = tmp_path / "source"
    write_release(source, 28034, build_time=released())
    old = nginx_factory(_docroot(tmp_path, "old", 28034, 30))
    fresh = nginx_factory(_docroot(tmp_path, "fresh", 28034, 0.5))
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(
        LAB_INVENTORY
        + _mirror("old.example", old.base_url, "Old Admin <old@example.org>")
        + _mirror("fresh.example", fresh.base_url, "Fresh Admin <fresh@example.org>")
    )

    def config(port: int) -> Path:
        path = tmp_path / f"syncd-{port}.toml"
        path.write_text(f"""
inventory = "{inventory}"
state = "{tmp_path / "state.sqlite"}"
source_tree = "{source}"
[monitor]
lagging_grace_h = 1
team = ["team@example.org"]
[monitor.smtp]
host = "{smtp_sink.host}"
port = {port}
sender = "monitor@example.org"
""")
        return path

    down = CliRunner().invoke(
        app, ["monitor", "--once", "--json", "--config", str(config(closed_port()))]
    )
    assert down.exit_code == 1 and json.loads(down.stdout)["mail"]["error"], down.output
    assert smtp_sink.envelopes == []
    again = _run(config(smtp_sink.port))
    assert again["transitions"] == [] and again["mail"]["sent"] == 1
    [(_, rcpts)] = smtp_sink.envelopes
    assert rcpts == ["old@example.org"]
    assert str(smtp_sink.messages[0]["Subject"]).endswith("old.example (IPv4): old")
    third = _run(config(smtp_sink.port))
    assert third["mail"]["sent"] == 0 and len(smtp_sink.envelopes) == 1
