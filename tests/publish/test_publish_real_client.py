"""End to end: syncd publish to real sshd mirrors forcing the real clam-clientsync against
real rsync daemons, with nginx serving what they published."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from devtools.harness.cvd import DEFAULT_VERSIONS, read_header
from devtools.harness.faultproxy import FaultProxy, closed_port
from devtools.harness.rsyncd import RsyncDaemon
from devtools.harness.sshkeys import generate_keypair
from tests.publish.fakes import MirrorFactory
from tests.publish.fixtures import Syncd, by_name
from tests.publish.realclient import MirrorMaker

pytestmark = pytest.mark.slow


def served_version(base_url: str, db: str) -> int:
    resp = httpx.get(
        f"{base_url}/{db}.cvd",
        headers={"Range": "bytes=0-511", "Host": "db.pl.clamav.net"},
        follow_redirects=False,
        trust_env=False,
    )
    assert resp.status_code == 206
    return int(resp.content.decode("ascii").split(":")[2])


def test_publish_to_a_real_fleet(
    tmp_path: Path,
    real_mirror: MirrorMaker,
    fake_mirror: MirrorFactory,
    syncd: Syncd,
    source_tree: Path,
    rsync_pair: tuple[RsyncDaemon, RsyncDaemon],
) -> None:
    ok1 = real_mirror("ok1.test", source=0)
    ok2 = real_mirror("ok2.test", source=1)
    changed = real_mirror("changed-key.test")
    unauthorized = real_mirror("unauthorized.test")
    unauthorized.sshd.set_authorized_keys(
        [generate_keypair(tmp_path / "stranger", "stranger").public_line]
    )
    with (
        FaultProxy("127.0.0.1", int(rsync_pair[0].url.rsplit(":", 1)[1])) as stall1,
        FaultProxy("127.0.0.1", int(rsync_pair[1].url.rsplit(":", 1)[1])) as stall2,
    ):
        stall1.set("stall")
        stall2.set("stall")
        hanging = real_mirror(
            "hanging.test",
            urls=(f"rsync://127.0.0.1:{stall1.port}", f"rsync://127.0.0.1:{stall2.port}"),
            extra={"TIMEOUT": "30", "CONTIMEOUT": "30", "DEADLINE": "60"},
        )
        garbage = fake_mirror("garbage.test", "garbage")
        spew = fake_mirror("spew.test", "spew")
        queued = fake_mirror("queued.test", "queued")
        syncd.write(
            ok1.inventory_block()
            + ok2.inventory_block(country="DE")
            + changed.inventory_block(host_keys=[ok1.sshd.host_key_line])
            + unauthorized.inventory_block()
            + hanging.inventory_block()
            + garbage.inventory_block()
            + spew.inventory_block()
            + queued.inventory_block()
            + "[[mirrors]]\n"
            f'name = "refused.test"\nhost = "127.0.0.1"\nport = {closed_port()}\n'
            f'country = "FR"\nhost_keys = ["{ok1.sshd.host_key_line}"]\n',
            policy="[policy]\nconnect_timeout = 3\nlogin_timeout = 3\ncommand_timeout = 6\n"
            "run_timeout = 40\nmax_attempts = 2\nbackoff_initial = 0.2\nbackoff_max = 0.5\n"
            "poll_initial = 0.3\npoll_max = 0.6\n",
        )
        started = time.monotonic()
        code, doc, err = syncd.publish("--source-tree", str(source_tree), timeout=90)
        elapsed = time.monotonic() - started
    assert code == 1, err
    assert doc["expected"] == DEFAULT_VERSIONS
    got = by_name(doc)
    assert {n: m["outcome"] for n, m in got.items()} == {
        "ok1.test": "ok",
        "ok2.test": "ok",
        "changed-key.test": "host_key_mismatch",
        "unauthorized.test": "auth_failed",
        "hanging.test": "timeout",
        "garbage.test": "failed",
        "spew.test": "failed",
        "queued.test": "ok",
        "refused.test": "unreachable",
    }, err
    assert elapsed < 30, err  # the hanging mirror costs its command deadline, not the run's
    for m, source in ((ok1, "rsync1.clamav.net"), (ok2, "rsync2.clamav.net")):
        rep = got[m.name]["report"]
        assert rep["status"] == "ok" and rep["source_used"] == source
        assert {db: d["version"] for db, d in rep["databases"].items()} == DEFAULT_VERSIONS
        for db, version in DEFAULT_VERSIONS.items():
            assert int(read_header(m.docroot / f"{db}.cvd")["version"]) == version
            assert served_version(m.web.base_url, db) == version
        assert (m.docroot / "local_test").read_text() == "Success"  # never touched
    assert not list(changed.docroot.glob("*.cvd"))  # nothing ran there
    assert not list(unauthorized.docroot.glob("*.cvd"))
    assert "no report within 6 s" in got["hanging.test"]["error"]
    assert "HOST KEY CHANGED" in err and "syncd mirrors pin changed-key.test" in err
    status = syncd.run("status", "--config", str(syncd.config))
    assert status.returncode == 0 and "ok1.test" in status.stdout


def test_resume_after_sigkill_with_real_clients(
    real_mirror: MirrorMaker,
    syncd: Syncd,
    source_tree: Path,
    rsync_pair: tuple[RsyncDaemon, RsyncDaemon],
) -> None:
    fast = [real_mirror(f"fast{i}.test", source=i % 2) for i in range(3)]
    with FaultProxy("127.0.0.1", int(rsync_pair[0].url.rsplit(":", 1)[1])) as slow_link:
        slow_link.set("pass", delay_s=0.4)
        slow = real_mirror(
            "slow.test", urls=(f"rsync://127.0.0.1:{slow_link.port}", rsync_pair[1].url)
        )
        syncd.write("".join(m.inventory_block() for m in [*fast, slow]))
        proc = syncd.popen(
            "publish", "--config", str(syncd.config), "--source-tree", str(source_tree)
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with sqlite3.connect(syncd.state, timeout=5) as conn:
                    try:
                        done = conn.execute(
                            "SELECT count(*) FROM publish_targets WHERE outcome = 'ok'"
                        ).fetchone()[0]
                    except sqlite3.OperationalError:
                        done = 0
                conn.close()
                if done >= 3:
                    break
                time.sleep(0.05)
            proc.kill()
        finally:
            proc.communicate(timeout=10)
        slow_link.set("pass", delay_s=0)
        conn = sqlite3.connect(syncd.state)
        ((run_id,),) = conn.execute("SELECT run_id FROM publish_runs").fetchall()
        pending = conn.execute(
            "SELECT mirror FROM publish_targets WHERE outcome IS NULL"
        ).fetchall()
        conn.close()
        assert pending == [("slow.test",)]
        code, doc, err = syncd.publish("--resume", run_id, timeout=90)
    assert code == 0, err
    assert {m["name"]: m["outcome"] for m in doc["mirrors"]} == {
        m.name: "ok" for m in [*fast, slow]
    }
    runs = syncd.run("runs", "show", run_id, "--json", "--config", str(syncd.config))
    record = json.loads(runs.stdout)
    assert record["invocations"] == 2
    assert {m["name"]: m["outcome"] for m in record["mirrors"]} == {
        m.name: "ok" for m in [*fast, slow]
    }
    conn = sqlite3.connect(syncd.state)
    oks = conn.execute(
        "SELECT mirror, count(*) FROM publish_attempts WHERE verdict = 'ok' GROUP BY mirror"
    ).fetchall()
    conn.close()
    assert sorted(oks) == sorted((m.name, 1) for m in [*fast, slow])
    for m in [*fast, slow]:
        assert int(read_header(m.docroot / "daily.cvd")["version"]) == DEFAULT_VERSIONS["daily"]


def test_push_during_a_running_sync_is_queued_then_completes(
    real_mirror: MirrorMaker,
    syncd: Syncd,
    source_tree: Path,
    rsync_pair: tuple[RsyncDaemon, RsyncDaemon],
) -> None:
    with FaultProxy("127.0.0.1", int(rsync_pair[0].url.rsplit(":", 1)[1])) as slow_link:
        slow_link.set("pass", delay_s=0.25)
        busy = real_mirror(
            "busy.test", urls=(f"rsync://127.0.0.1:{slow_link.port}", rsync_pair[1].url)
        )
        syncd.write(
            busy.inventory_block(),
            policy="[policy]\ncommand_timeout = 60\nrun_timeout = 60\npoll_initial = 0.5\n"
            "poll_max = 1\n",
        )
        first_state = syncd.workdir / "first.sqlite"
        first = syncd.popen(
            "publish",
            "--config",
            str(syncd.config),
            "--state",
            str(first_state),
            "--source-tree",
            str(source_tree),
        )
        try:
            deadline = time.monotonic() + 20
            while slow_link.stats.accepted == 0 and time.monotonic() < deadline:
                time.sleep(0.05)  # the first sync is now inside rsync, holding the lock
            assert slow_link.stats.accepted > 0
            code, doc, err = syncd.publish("--source-tree", str(source_tree), timeout=60)
        finally:
            first.communicate(timeout=60)
    assert first.returncode == 0
    assert code == 0, err
    (m,) = doc["mirrors"]
    assert m["outcome"] == "ok" and m["attempts"] >= 2
    conn = sqlite3.connect(syncd.state)
    verbs = conn.execute("SELECT verb, verdict FROM publish_attempts ORDER BY id").fetchall()
    conn.close()
    assert verbs[0] == ("sync", "queued")
    assert verbs[-1] == ("status", "ok")
    assert int(read_header(busy.docroot / "daily.cvd")["version"]) == DEFAULT_VERSIONS["daily"]
