"""Mirrors' https certificates through real monitor passes: nginx serving the mirror over http
and https with certificates the test makes (its CA trusted instead of the system's store), the
real SMTP server, the record, the page, status.json and the metrics; the clock injected and
moved on by days, the mirror's timestamp renewed as the heartbeat would. Every pass opens the
record anew, as a restarted monitor does."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import jsonschema
import trio
from typer.testing import CliRunner

from devtools.harness.cvd import write_release
from devtools.harness.documents import LAB_INVENTORY
from devtools.harness.nginx import Nginx
from devtools.harness.smtp import SmtpSink
from devtools.harness.tlscerts import Issued, TestCa
from syncd.cli import app
from syncd.dns.evidence import gather_evidence
from syncd.dns.gate import serves_release
from syncd.files import read_inventory
from syncd.httpcheck.tls import certificate
from syncd.monitor.config import MonitorConfig, SmtpConfig
from syncd.monitor.run import PassSummary, run_pass
from syncd.publish.store import PublishStore
from syncd.sqlite import open_db
from syncd.statuspage.site import page_name
from tests.monitor.test_monitor_e2e import KEY, released

DAY = 86_400.0
HOUR = 3600.0
SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "status.schema.json").read_text())
RELEASE = {"daily": 28034, "main": 62, "bytecode": 335}


def _mirror(name: str, nginx: Nginx, admin: str) -> str:
    return (
        f'[[mirrors]]\nname = "{name}"\nhost = "127.0.0.1"\ncountry = "PL"\n'
        f'admins = ["{admin}"]\nhost_keys = ["{KEY}"]\nhttp = "{nginx.base_url}"\n'
        f'https = "{nginx.https_url()}"\n'
    )


class Fleet:
    """Mirrors served by nginx over http and https, a clock the test moves, one monitor pass
    at a time."""

    def __init__(self, tmp_path: Path, smtp: SmtpSink) -> None:
        self.tmp = tmp_path
        self.base = float(int(time.time()))  # whole seconds, as a certificate holds them
        self.offset = 0.0
        self.ca = TestCa(tmp_path / "ca")
        self.source = tmp_path / "source"
        write_release(self.source, 28034, build_time=released())
        self.roots: list[Path] = []
        self.inventory = tmp_path / "inventory.toml"
        self.state = tmp_path / "state.sqlite"
        self.page = tmp_path / "www" / "index.html"
        self.metrics = tmp_path / "metrics" / "pushsync.prom"
        self.cfg = MonitorConfig(
            https_cafile=self.ca.cafile,
            lagging_grace_h=1,
            status_page=self.page,
            metrics=self.metrics,
            smtp=SmtpConfig(host=smtp.host, port=smtp.port, sender="monitor@example.org"),
        )

    def clock(self) -> float:
        return self.base + self.offset

    def docroot(self, name: str) -> Path:
        root = self.tmp / name
        write_release(root, 28034, build_time=released())
        self.roots.append(root)
        return root

    def published(self, names: list[str]) -> None:
        """A publish that reached every mirror (their reports carry the release)."""
        conn = open_db(self.state)
        store = PublishStore(conn)
        at = self.clock() - HOUR
        store.create_run(
            "run-1", at, expected=RELEASE, request="sync", inventory=None, mirrors=names
        )
        for name in names:
            store.finish_target(
                "run-1", name, at + 1, outcome="ok", error=None, report=None, versions=RELEASE
            )
        store.finish_run("run-1", at + 2, "finished")
        conn.close()

    def run(self) -> PassSummary:
        for root in self.roots:  # the heartbeat keeps every timestamp half an hour old
            (root / "timestamp").write_text(f"{int(self.clock() - HOUR / 2)}\n")
        return run_pass(
            inventory=self.inventory,
            state=self.state,
            source_tree=self.source,
            cfg=self.cfg,
            send_mail=True,
            clock=self.clock,
        )

    def in_rotation(self, name: str) -> bool:
        conn = open_db(self.state)
        try:
            gathered = gather_evidence(conn, read_inventory(self.inventory), http_check=True)
        finally:
            conn.close()
        ev = next(m for m in gathered.mirrors if m.name == name)
        return serves_release(ev, RELEASE)


def _wait_served(port: int, ca: TestCa, issued: Issued) -> None:
    """nginx reloads its workers in the background: wait until the new certificate is served
    (at most 10 s, or fail)."""
    for _ in range(100):
        answer = trio.run(lambda: certificate("localhost", port, cafile=str(ca.cafile)))
        if answer.cert is not None and answer.cert.fingerprint == issued.fingerprint:
            return
        time.sleep(0.1)
    raise AssertionError("nginx did not serve the renewed certificate")


def _to(smtp: SmtpSink, address: str) -> list[str]:
    return [str(m["Subject"]).strip() for m in smtp.messages if address in str(m["To"])]


def _certs(summary: PassSummary) -> dict[str, tuple[str, float | None]]:
    doc = summary.to_json()
    return {c["mirror"]: (c["state"], c["days_left"]) for c in doc["certificates"]}


def test_a_certificate_near_its_end_mails_once_per_threshold_and_never_leaves_rotation(
    tmp_path: Path, nginx_factory: Callable[..., Nginx], smtp_sink: SmtpSink
) -> None:
    fleet = Fleet(tmp_path, smtp_sink)
    base = fleet.base
    # valid for 20 days and an hour from the start of the test's clock
    cert = fleet.ca.issue(("localhost",), base - HOUR, base + 20 * DAY + HOUR)
    wrong = fleet.ca.issue(("clamav.example.org",), base - HOUR, base + 90 * DAY)
    selfsigned = fleet.ca.issue(("localhost",), base - HOUR, base + 90 * DAY, self_signed=True)
    tls = nginx_factory(fleet.docroot("tls"), tls=(cert.chain, cert.key))
    named = nginx_factory(fleet.docroot("wrong"), tls=(wrong.chain, wrong.key))
    own = nginx_factory(fleet.docroot("self"), tls=(selfsigned.chain, selfsigned.key))
    fleet.inventory.write_text(
        LAB_INVENTORY
        + _mirror("tls.example", tls, "TLS Admin <tls@example.org>")
        + _mirror("wrong.example", named, "Wrong Admin <wrong@example.org>")
        + _mirror("self.example", own, "Self Admin <self@example.org>")
    )
    fleet.published(["tls.example", "wrong.example", "self.example"])

    # 20 days left: nothing to say; the wrong name and the self-signed one: said once each
    first = fleet.run()
    assert _certs(first)["tls.example"][0] == "ok"
    assert _certs(first)["wrong.example"][0] == "invalid"
    assert _certs(first)["self.example"][0] == "invalid"
    assert _to(smtp_sink, "tls@example.org") == []
    assert _to(smtp_sink, "wrong@example.org") == [
        "[clamav-mirror] wrong.example: https certificate is refused by freshclam"
    ]
    wrong_mail = next(m for m in smtp_sink.messages if "wrong@example.org" in str(m["To"]))
    assert "it is not valid for localhost (it names clamav.example.org)" in (
        wrong_mail.get_content()
    )
    self_mail = next(m for m in smtp_sink.messages if "self@example.org" in str(m["To"]))
    assert "it is self-signed" in self_mail.get_content()
    assert fleet.in_rotation("tls.example")
    assert fleet.in_rotation("wrong.example") and fleet.in_rotation("self.example")

    expected = []
    for offset, subject in [
        (7 * DAY, "expires in 13 days"),  # 13 days left: the 14-day warning
        (7 * DAY + HOUR, None),  # a second pass: no second mail
        (14 * DAY, "expires in 6 days"),  # the 7-day warning
        (14 * DAY + 6 * HOUR, None),
        (19.5 * DAY + HOUR, "expires in 12 hours"),  # the 1-day warning
        (20 * DAY, None),
        (21 * DAY, "has expired"),  # expired: reported, and said once
        (22 * DAY, None),
    ]:
        fleet.offset = offset
        summary = fleet.run()
        if subject is not None:
            expected.append(f"[clamav-mirror] tls.example: https certificate {subject}")
        assert _to(smtp_sink, "tls@example.org") == expected, offset / DAY
        # whatever its certificate, the mirror serves http users from the rotation
        assert fleet.in_rotation("tls.example"), offset / DAY
        assert summary.changes == []  # no freshness change, ever
    assert len(_to(smtp_sink, "wrong@example.org")) == 1
    assert len(_to(smtp_sink, "self@example.org")) == 1
    assert _certs(summary)["tls.example"] == ("expired", -1.96)

    # reported: the page, status.json (valid against its schema) and the metrics
    doc = json.loads((fleet.page.parent / "status.json").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    entry = next(m for m in doc["mirrors"] if m["name"] == "tls.example")
    assert entry["state"] == "fresh"
    assert entry["certificate"]["state"] == "expired"
    assert entry["certificate"]["valid"] is False
    assert entry["certificate"]["sha256"] == cert.fingerprint
    assert entry["certificate"]["expires_in_s"] == -(2 * DAY - HOUR)
    assert entry["certificate"]["problems"][0].startswith("it expired on ")
    page = (fleet.page.parent / page_name("tls.example")).read_text()
    assert "HTTPS certificate" in page and cert.fingerprint in page
    metrics = fleet.metrics.read_text()
    assert 'pushsync_mirror_cert_valid{mirror="tls.example"} 0' in metrics
    left = f"{-(2 * DAY - HOUR):.0f}"
    assert f'pushsync_mirror_cert_expiry_seconds{{mirror="tls.example"}} {left}' in metrics
    assert 'pushsync_mirror_cert_state{mirror="wrong.example",state="invalid"} 1' in metrics

    # renewed: another certificate, its warnings start afresh (13 days left: the 14-day one)
    renewed = fleet.ca.issue(("localhost",), base - HOUR, base + 35 * DAY)
    cert.chain.write_bytes(renewed.chain.read_bytes())
    cert.key.write_bytes(renewed.key.read_bytes())
    tls.reload()
    _wait_served(tls.tls_port, fleet.ca, renewed)
    renewed_pass = fleet.run()
    assert _certs(renewed_pass)["tls.example"] == ("expiring", 13.0)
    assert _to(smtp_sink, "tls@example.org")[-1] == (
        "[clamav-mirror] tls.example: https certificate expires in 13 days"
    )
    db = sqlite3.connect(fleet.state)
    assert db.execute(
        "SELECT fingerprint, key FROM cert_mail WHERE mirror = 'tls.example'"
    ).fetchall() == [(renewed.fingerprint, "14d")]
    assert fleet.in_rotation("tls.example")


def test_a_mail_not_sent_is_sent_by_the_next_pass_and_only_then_recorded(
    tmp_path: Path, nginx_factory: Callable[..., Nginx], smtp_sink: SmtpSink
) -> None:
    """The SMTP server refuses the warning's pass: nothing is recorded as sent, and the next
    pass sends it, once."""
    fleet = Fleet(tmp_path, smtp_sink)
    cert = fleet.ca.issue(("localhost",), fleet.base - HOUR, fleet.base + 5 * DAY)
    tls = nginx_factory(fleet.docroot("tls"), tls=(cert.chain, cert.key))
    fleet.inventory.write_text(LAB_INVENTORY + _mirror("tls.example", tls, "A <a@example.org>"))
    good = fleet.cfg
    fleet.cfg = good.model_copy(update={"smtp": SmtpConfig(host="127.0.0.1", port=9)})
    refused = fleet.run()
    assert refused.mail.error is not None and refused.mail.sent == 0
    fleet.cfg = good
    fleet.offset = HOUR
    fleet.run()
    fleet.offset = 2 * HOUR
    fleet.run()
    assert _to(smtp_sink, "a@example.org") == [
        "[clamav-mirror] tls.example: https certificate expires in 5 days"
    ]


def test_a_mirror_without_https_is_not_checked_and_removing_https_forgets_it(
    tmp_path: Path, nginx_factory: Callable[..., Nginx], smtp_sink: SmtpSink
) -> None:
    fleet = Fleet(tmp_path, smtp_sink)
    cert = fleet.ca.issue(("localhost",), fleet.base - HOUR, fleet.base + 5 * DAY)
    tls = nginx_factory(fleet.docroot("tls"), tls=(cert.chain, cert.key))
    fleet.inventory.write_text(LAB_INVENTORY + _mirror("tls.example", tls, "A <a@example.org>"))
    assert _certs(fleet.run())["tls.example"][0] == "expiring"
    fleet.inventory.write_text(
        LAB_INVENTORY + _mirror("tls.example", tls, "A <a@example.org>").replace("https = ", "#")
    )
    summary = fleet.run()
    assert summary.certs == []
    doc = json.loads((fleet.page.parent / "status.json").read_text())
    assert doc["mirrors"][0]["certificate"] is None
    db = sqlite3.connect(fleet.state)
    assert db.execute("SELECT count(*) FROM cert_status").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM cert_mail").fetchone()[0] == 0


def test_the_command_line_says_which_certificate_needs_attention(
    tmp_path: Path, nginx_factory: Callable[..., Nginx], smtp_sink: SmtpSink
) -> None:
    """`syncd monitor --once` (the real clock) prints a line per certificate that is not ok,
    and `--json` carries each in `certificates`; [monitor] https_cafile from syncd.toml."""
    fleet = Fleet(tmp_path, smtp_sink)
    cert = fleet.ca.issue(("localhost",), fleet.base - HOUR, fleet.base + 5 * DAY + HOUR)
    tls = nginx_factory(fleet.docroot("tls"), tls=(cert.chain, cert.key))
    fleet.inventory.write_text(LAB_INVENTORY + _mirror("tls.example", tls, "A <a@example.org>"))
    (fleet.roots[0] / "timestamp").write_text(f"{int(time.time())}\n")
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'inventory = "{fleet.inventory}"\nstate = "{fleet.state}"\n'
        f'source_tree = "{fleet.source}"\n[monitor]\nhttps_cafile = "{fleet.ca.cafile}"\n'
    )
    done = CliRunner().invoke(app, ["monitor", "--once", "--no-mail", "--config", str(config)])
    assert done.exit_code == 0, done.output
    assert "tls.example https certificate expiring: it expires in 5 days, on " in done.output
    as_json = CliRunner().invoke(
        app, ["monitor", "--once", "--no-mail", "--json", "--config", str(config)]
    )
    doc = json.loads(as_json.stdout.strip().splitlines()[-1])
    assert [(c["mirror"], c["state"]) for c in doc["certificates"]] == [("tls.example", "expiring")]
    assert smtp_sink.messages == []  # --no-mail


def test_a_ca_file_that_cannot_be_read_fails_each_check_not_the_pass(
    tmp_path: Path, nginx_factory: Callable[..., Nginx], smtp_sink: SmtpSink
) -> None:
    fleet = Fleet(tmp_path, smtp_sink)
    cert = fleet.ca.issue(("localhost",), fleet.base - HOUR, fleet.base + 50 * DAY)
    tls = nginx_factory(fleet.docroot("tls"), tls=(cert.chain, cert.key))
    fleet.inventory.write_text(LAB_INVENTORY + _mirror("tls.example", tls, "A <a@example.org>"))
    for bad in (tmp_path / "missing.pem", fleet.inventory):  # absent; not PEM
        fleet.cfg = fleet.cfg.model_copy(update={"https_cafile": bad})
        summary = fleet.run()
        [status] = summary.certs
        assert status.state == "failed"
        assert status.problems[0].startswith(f"cannot load the CA file {bad}: ")
        assert [m.state for m in summary.mirrors] == ["fresh"]
    assert smtp_sink.messages == []


def _window(start: float, end: float) -> str:
    iso = [
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # relative to the test's clock
        for t in (start, end)
    ]
    return f'maintenance = {{ start = "{iso[0]}", end = "{iso[1]}", reason = "new disks" }}\n'


def test_a_mirror_in_maintenance_hears_of_its_certificate_after_the_window(
    tmp_path: Path, nginx_factory: Callable[..., Nginx], smtp_sink: SmtpSink
) -> None:
    """Its alert mails are held during a window the team set: the certificate's warning is
    not sent, not recorded, and goes with the first pass after the window, once. (Proven
    by dropping the hold: the warning went during the window.)"""
    fleet = Fleet(tmp_path, smtp_sink)
    cert = fleet.ca.issue(("localhost",), fleet.base - HOUR, fleet.base + 5 * DAY)
    tls = nginx_factory(fleet.docroot("tls"), tls=(cert.chain, cert.key))
    fleet.published(["tls.example"])
    entry = _mirror("tls.example", tls, "A <a@example.org>")
    window = _window(fleet.base - HOUR, fleet.base + 6 * HOUR)
    fleet.inventory.write_text(LAB_INVENTORY + entry + window)
    during = fleet.run()
    assert _certs(during)["tls.example"][0] == "expiring"
    fleet.offset = 3 * HOUR
    fleet.run()
    assert _to(smtp_sink, "a@example.org") == []
    fleet.offset = 7 * HOUR  # the window is over
    fleet.run()
    fleet.offset = 8 * HOUR
    fleet.run()
    assert _to(smtp_sink, "a@example.org") == [
        "[clamav-mirror] tls.example: https certificate expires in 5 days"
    ]
