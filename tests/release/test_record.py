"""The record read into the propagation (real SQLite, the stores' own writes): the publish's
proof first, the monitor's sight of the mirrors it did not prove (every family, through
json_extract), the TXT sent, the build time recorded with the release's headers."""

from __future__ import annotations

from pathlib import Path

from pushwire.cvd import CvdHeader
from syncd.dns.plan import Change
from syncd.dns.store import DnsStore
from syncd.monitor.freshness import Check, Record
from syncd.monitor.store import MonitorStore
from syncd.publish.store import PublishStore
from syncd.release.record import read_releases, txt_sent
from syncd.release.store import ReleaseStore
from syncd.sqlite import open_db
from tests.release.data import RELEASE, START


def _txt(versions: dict[str, int]) -> Change:
    value = (
        f'"1.0.9:{versions["main"]}:{versions["daily"]}:{int(START)}:1:90:0:{versions["bytecode"]}"'
    )
    return Change("current.cvd", "TXT", (value,), (), "release announced")


def test_the_record_read_into_the_propagation(tmp_path: Path) -> None:
    conn = open_db(tmp_path / "state.sqlite")
    publish, monitor, dns = PublishStore(conn), MonitorStore(conn), DnsStore(conn)
    mirrors = ["proven", "seen", "half", "silent"]
    publish.create_run(
        "r1", START, expected=RELEASE, request="sync", inventory=None, mirrors=mirrors
    )
    publish.finish_target("r1", "proven", START + 30, outcome="ok", error=None, report=None)
    for m in ("seen", "half"):
        publish.finish_target("r1", m, START + 40, outcome="failed", error="http", report=None)
    newer = {**RELEASE, "daily": RELEASE["daily"] + 1}
    older = {**RELEASE, "daily": RELEASE["daily"] - 1}
    monitor.save(
        [
            ("proven", "IPv4", Check(START + 10, True, versions=RELEASE), Record(), None),
            ("seen", "IPv4", Check(START - 50, True, versions=RELEASE), Record(), None),
            ("seen", "IPv4", Check(START + 100, True, versions=older), Record(), None),
            ("seen", "IPv4", Check(START + 200, False), Record(), None),
            ("seen", "IPv4", Check(START + 300, True, versions=newer), Record(), None),
            ("seen", "IPv6", Check(START + 250, True, versions=RELEASE), Record(), None),
            ("half", "IPv4", Check(START + 100, True, versions=RELEASE), Record(), None),
            ("half", "IPv6", Check(START + 100, False), Record(), None),
        ]
    )
    ids = dns.record(START + 500, [_txt(RELEASE)], "sending")
    dns.set_outcome(ids, "sent")
    dns.record(START + 600, [_txt(newer)], "failed: refused")  # never sent: not announced
    daily = CvdHeader("x", RELEASE["daily"], 10, 90, "0" * 32, "b", int(START) - 120)
    ReleaseStore(conn).record_headers({"daily": daily}, START)

    [p] = read_releases(conn)
    served = {s.mirror: (s.at, s.by) for s in p.mirrors}
    # the publish's proof stands (the monitor is not asked); seen: its later family, the
    # newer release counted (it serves at least this one); half: IPv6 never saw it
    assert served == {
        "proven": (START + 30, "publish"),
        "seen": (START + 300, "monitor"),
        "half": (None, None),
        "silent": (None, None),
    }
    assert p.missing == ("half", "silent")
    assert p.from_start.seconds == {50: 300.0, 90: None, 99: None, 100: None}
    assert p.built_at == START - 120 and p.from_build is not None
    assert p.announced_at == START + 500
    assert txt_sent(conn) == [(START + 500, dict(RELEASE))]
