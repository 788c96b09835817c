"""Traffic end to end: a real mirror (sshd forcing the real client, nginx serving its tree and
writing its access log) is pushed to by ``syncd publish``; freshclam-like fetches between two
publishes come back in the second report, byte for byte, and are recorded once in syncd's
record, as the status page reads them."""

from __future__ import annotations

import time
from pathlib import Path

from devtools.harness.account import make_traversable
from devtools.harness.cvd import DEFAULT_VERSIONS
from syncd.monitor.run import read_snapshot
from syncd.sqlite import open_db
from syncd.statuspage.traffic import mirror_view
from syncd.traffic.store import TrafficStore
from tests.client.test_traffic import body, expected, freshclam_round
from tests.publish.fixtures import Syncd, by_name
from tests.publish.realclient import MirrorMaker

EXPECT = [f"--expect={db}={v}" for db, v in DEFAULT_VERSIONS.items()]
COUNTED = ("requests", "bytes", "kinds", "statuses", "clients")


def test_what_the_mirror_served_reaches_syncds_record(
    real_mirror: MirrorMaker, syncd: Syncd, source_tree: Path
) -> None:
    m = real_mirror("traffic.test")
    make_traversable(m.web.access_log.parent)  # the mirror's user reads the log
    m.web.access_log.touch()
    m.web.access_log.chmod(0o644)
    with m.conf.open("a") as conf:
        conf.write(f"ACCESS_LOG={m.web.access_log}\n")
    syncd.write(m.inventory_block())
    code, doc, err = syncd.publish("--source-tree", str(source_tree))
    assert code == 0, err
    first = by_name(doc)["traffic.test"]["report"]
    assert first["traffic"]["requests"] == 0, first
    fetched = freshclam_round(m.web)
    want = expected(fetched, body)
    for _ in range(500):  # nginx logs a request once answered
        text = m.web.access_log.read_text()
        if text.count("ClamAV/") >= 5:
            break
        time.sleep(0.01)
    code, doc, err = syncd.publish("--source-tree", str(source_tree))
    assert code == 0, err
    traffic = by_name(doc)["traffic.test"]["report"]["traffic"]
    assert {k: traffic[k] for k in COUNTED} == {k: want[k] for k in COUNTED}
    # the first publish's own checks (ClamAV-MirrorCheck) are excluded, not counted
    assert traffic["excluded"] >= 1 and traffic["since"] == first["started_at"]

    conn = open_db(syncd.state)
    recorded = TrafficStore(conn).reports(0.0)["traffic.test"]
    assert len(recorded) == 2  # one per report, whatever the publish polled
    now = recorded[-1][0]  # as of the last record: no clock read here
    rows = read_snapshot(conn, ["traffic.test"], now).traffic["traffic.test"]
    conn.close()
    view = mirror_view(rows, now)
    assert view is not None
    assert (view.day.requests, view.day.bytes) == (want["requests"], want["bytes"])
    assert view.day.client_shares() == {"0.103": 0.2, "1": 0.8}
