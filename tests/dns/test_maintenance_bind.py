"""A maintenance window, end to end, its start and end driven by the monitor's injected clock.

Real parts: a BIND primary that takes syncd's updates, three mirrors (nginx, each on its own
loopback address, serving a real tree), an SMTP sink, the real ``clam-clientsync maintenance``
writing pl1's notice into its served tree (nginx serves it as ``/local_maintenance``), the real
``syncd mirrors set pl2 maintenance=...`` (a window announced by mail), and the real monitor
pass (checks, record, mail, the rotation through the real DNS update, page and metrics).

Both windows run from T+2h to T+4h. Before the lead (a monitor interval plus the pools' TTL)
both mirrors stay in ``db.pl``; within it they leave it while still serving; during the window
their web servers are really down and nothing is mailed, nor does the monitor suspect itself
(two of three mirrors failing would trip the outage guard were they counted); after the window
they come back only once their checks are fresh again (two good ones), and their admins hear
they are back.

Proven to fail: with `window_in_effect` always None (no maintenance at all) the test failed at
the lead (pl1 still in db.pl), and with the mail hold removed it failed during the window
(pl1's and pl2's admins mailed ``unreachable``); with the outage guard counting them, the pass
during the window suspected itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from clientside.verbs.maintenance import run_maintenance
from devtools.harness.documents import lab_inventory
from devtools.harness.named import Named
from devtools.harness.nginx import Nginx
from devtools.harness.ports import free_port
from devtools.harness.record import record_publish
from devtools.harness.smtp import SmtpSink
from pushwire.maintenance import format_time
from syncd.cli import app
from syncd.dns.store import ROTATION_LOCK_WAIT_S, dns_lock
from syncd.dns.update import Clock, rotation, update
from syncd.files import load_config, read_inventory, read_source_tree
from syncd.monitor.run import PassSummary, run_pass
from tests.dns.invariant import push_tree

pytestmark = pytest.mark.slow
SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "status.schema.json").read_text())

DAILY = 28050
MIRRORS = {"pl1": "127.0.34.1", "pl2": "127.0.34.2", "pl3": "127.0.34.3"}
H = 3600.0
INTERVAL = 600  # [monitor] interval_s: the lead is this plus the pools' TTL


@dataclass
class Lab:
    tmp: Path
    named: Named
    sink: SmtpSink
    servers: dict[str, Nginx]
    now: list[float]

    @property
    def config(self) -> Path:
        return self.tmp / "syncd.toml"

    def pool(self) -> list[str]:
        return self.named.dig("db.pl", "A")

    def monitor(self, lock_sleep: Callable[[float], None] = time.sleep) -> PassSummary:
        cfg, _ = load_config(self.config)
        assert cfg.dns is not None and cfg.inventory and cfg.state and cfg.source_tree
        dns = cfg.dns
        rotate = rotation(
            cfg, dns, state=cfg.state, clock=lambda: self.now[0], lock_sleep=lock_sleep
        )
        return run_pass(
            inventory=cfg.inventory,
            state=cfg.state,
            source_tree=cfg.source_tree,
            cfg=cfg.monitor,
            send_mail=True,
            clock=lambda: self.now[0],
            gate_share=dns.gate_share,
            http_check=cfg.policy.http_check,
            rotate=rotate,
            pool_ttl=dns.pool_ttl,
        )

    def published(self) -> None:
        """Every mirror's publish of the release recorded now, and the first DNS push made."""
        t0 = self.now[0]
        versions = {"daily": DAILY, "main": 62, "bytecode": 335}
        record_publish(self.tmp / "state.sqlite", dict.fromkeys(MIRRORS, True), versions, at=t0)
        cfg, _ = load_config(self.config)
        assert cfg.dns is not None
        first = update(
            cfg,
            cfg.dns,
            inventory=read_inventory(self.tmp / "inventory.toml"),
            state=self.tmp / "state.sqlite",
            source=read_source_tree(self.tmp / "source"),
            dry_run=False,
            now=t0,
            clock=Clock(now=lambda: self.now[0], sleep=lambda s: None),
        )
        assert first.error is None, first.to_json()

    def mails(self) -> list[tuple[str, str]]:
        return [(str(m["To"]), str(m["Subject"])) for m in self.sink.messages]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    servers: dict[str, Nginx] = {}
    port = free_port()
    try:
        with Named(tmp_path / "named", default_ttl=1) as named, SmtpSink() as sink:
            for name, address in MIRRORS.items():
                root = tmp_path / "mirrors" / name
                push_tree(root, DAILY)
                nginx = Nginx(tmp_path / "nginx" / name, root, port=port)
                nginx.host = address
                servers[name] = nginx.start()
            push_tree(tmp_path / "source", DAILY)
            secret = tmp_path / "tsig.secret"
            secret.write_text(named.secret + "\n")
            secret.chmod(0o600)
            (tmp_path / "inventory.toml").write_text(
                lab_inventory(
                    [
                        {"name": n, "host": a, "country": "PL", "http": f"http://{a}:{port}"}
                        | {"admins": [f"Admin <admin@{n}.example.org>"]}
                        for n, a in MIRRORS.items()
                    ]
                )
            )
            (tmp_path / "syncd.toml").write_text(f"""
inventory = "{tmp_path / "inventory.toml"}"
state = "{tmp_path / "state.sqlite"}"
source_tree = "{tmp_path / "source"}"
[monitor]
interval_s = {INTERVAL}
unreachable_after = 1
recover_after = 2
mail_interval_h = 0
team = ["team@example.org"]
status_page = "{tmp_path / "www" / "index.html"}"
metrics = "{tmp_path / "metrics.prom"}"
[monitor.smtp]
host = "{sink.host}"
port = {sink.port}
[dns]
server = "{named.host}"
port = {named.port}
key_name = "{named.key_name}"
key_secret_file = "{secret}"
gate_share = 0.6
pool_ttl = 1
ttl = 1
""")
            yield Lab(tmp_path, named, sink, servers, [time.time()])
    finally:
        for server in servers.values():
            server.stop()


def _client_config(lab: Lab, name: str) -> Path:
    """pl1's clam-clientsync.conf: TO is the tree nginx serves."""
    etc = lab.tmp / "clients" / name
    etc.mkdir(parents=True)
    conf = etc / "clam-clientsync.conf"
    conf.write_text(
        f'TO="{lab.tmp / "mirrors" / name}"\nSTATE_DIR="{etc / "var"}"\nMODULE=clamavdb\n'
    )
    conf.chmod(0o600)
    return conf


def test_a_maintenance_window_takes_the_mirror_out_holds_its_mail_and_brings_it_back(
    lab: Lab,
) -> None:
    t0 = lab.now[0]
    lab.published()
    everyone = sorted(MIRRORS.values())
    summary = lab.monitor()
    assert {m["name"]: m["state"] for m in summary.to_json()["mirrors"]} == dict.fromkeys(
        MIRRORS, "fresh"
    )
    assert lab.pool() == everyone

    # pl1's admin announces the window with the client; the team sets pl2's from a mail
    starts, ends = t0 + 2 * H, t0 + 4 * H
    conf = _client_config(lab, "pl1")
    argv = ["--config", str(conf), "--from", format_time(starts), "--until", format_time(ends)]
    reason = "new disks <b>\u202e\x1b[2J"
    assert run_maintenance([*argv, "--reason", reason], str(lab.tmp), now=lambda: t0) == 0
    set_pl2 = CliRunner().invoke(
        app,
        [
            "mirrors",
            "set",
            "pl2",
            f"maintenance={format_time(starts)}..{format_time(ends)}",
            "reason=power work",
            "--config",
            str(lab.config),
        ],
    )
    assert set_pl2.exit_code == 0, set_pl2.output
    mailed = len(lab.mails())

    # before the lead: in rotation, nothing shown
    lead = INTERVAL + 1
    lab.now[0] = starts - lead - 30
    summary = lab.monitor()
    assert lab.pool() == everyone
    assert all(m["maintenance"] is None for m in summary.to_json()["mirrors"])

    # within the lead: out of the rotation while still serving, shown everywhere
    lab.now[0] = starts - 300
    summary = lab.monitor()
    assert summary.dns is not None and summary.dns.error is None, summary.dns
    assert lab.pool() == [MIRRORS["pl3"]]
    shown = {m["name"]: m["maintenance"] for m in summary.to_json()["mirrors"]}
    assert shown["pl1"] == {
        "from": format_time(starts),
        "until": format_time(ends),
        "reason": "new disks <b>[2J",
        "by": "admin",
    }
    assert shown["pl2"] is not None and shown["pl2"]["by"] == "team" and shown["pl3"] is None
    status = json.loads((lab.tmp / "www" / "status.json").read_text())
    assert {m["name"]: m["maintenance"] for m in status["mirrors"]} == shown
    jsonschema.Draft202012Validator(SCHEMA).validate(status)
    page = (lab.tmp / "www" / "index.html").read_text()
    assert "new disks &lt;b&gt;" in page and "<b>" not in page and "\u202e" not in page
    metrics = (lab.tmp / "metrics.prom").read_text()
    assert 'pushsync_mirror_maintenance{mirror="pl1",reason="new disks <b>[2J",by="admin"} 1' in (
        metrics
    )
    assert f'pushsync_mirror_maintenance_end_seconds{{mirror="pl2"}} {int(ends)}' in metrics
    assert len(lab.mails()) == mailed

    # during the window both web servers are really down: no mail, no self-suspicion
    lab.servers["pl1"].stop()
    lab.servers["pl2"].stop()
    lab.now[0] = starts + 60
    summary = lab.monitor()
    states = {m["name"]: m["state"] for m in summary.to_json()["mirrors"]}
    assert states == {"pl1": "unreachable", "pl2": "unreachable", "pl3": "fresh"}
    assert summary.suspect is None
    assert lab.mails()[mailed:] == []
    assert lab.pool() == [MIRRORS["pl3"]]

    # after the window: pl1 back only once fresh again (two good checks), then announced;
    # pl2 still down, and its admins hear of it now, once (the news the window held)
    lab.servers["pl1"].start()
    lab.now[0] = ends + 60
    summary = lab.monitor()
    assert all(m["maintenance"] is None for m in summary.to_json()["mirrors"])
    assert lab.pool() == [MIRRORS["pl3"]]  # one good check: not yet
    assert [(to, subject.split(": ")[-1]) for to, subject in lab.mails()[mailed:]] == [
        ("Admin <admin@pl2.example.org>", "unreachable")
    ]
    lab.now[0] = ends + 60 + INTERVAL
    summary = lab.monitor()
    assert [(c.mirror, c.new) for c in summary.changes] == [("pl1", "recovered")]
    assert lab.pool() == sorted([MIRRORS["pl1"], MIRRORS["pl3"]])
    recipients = sorted(to for to, _ in lab.mails()[mailed:])
    assert recipients == [
        "Admin <admin@pl1.example.org>",
        "Admin <admin@pl2.example.org>",
        "team@example.org",
    ]
    lab.servers["pl2"].start()


def test_the_monitor_waits_for_another_dns_updater_only_so_long(lab: Lab) -> None:
    """A publish's gate may hold DNS for up to 15 minutes (its settles and TTL waits); the
    monitor's pass must end within its unit's 14: its rotation waits ROTATION_LOCK_WAIT_S at
    most, leaves the pools to the next pass, and the pass itself ends whole. (On the code
    before, the rotation waited LOCK_WAIT_S, 900 s.)"""
    record_publish(
        lab.tmp / "state.sqlite",
        dict.fromkeys(MIRRORS, True),
        {"daily": DAILY, "main": 62, "bytecode": 335},
        at=lab.now[0],
    )
    waited: list[float] = []
    with dns_lock(lab.tmp / "state.sqlite"):  # another syncd's gate, mid-update
        busy = lab.monitor(lock_sleep=waited.append)
    assert busy.dns is not None and busy.dns.changes == []
    assert busy.dns.error is not None and "another syncd" in busy.dns.error
    assert sum(waited) == pytest.approx(ROTATION_LOCK_WAIT_S)
    assert {m["state"] for m in busy.to_json()["mirrors"]} == {"fresh"}
    free = lab.monitor()
    assert free.dns is not None and free.dns.error is None, free.dns.to_json()
    assert lab.pool() == sorted(MIRRORS.values())
