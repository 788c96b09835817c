"""Keys, signals and the durable record, through real sshd and a real syncd process."""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from devtools.harness.cvd import DEFAULT_VERSIONS
from devtools.harness.sshkeys import generate_keypair
from tests.publish.fakes import FakeMirror, MirrorFactory
from tests.publish.fixtures import Syncd, by_name

EXPECT = [f"--expect={db}={v}" for db, v in DEFAULT_VERSIONS.items()]


def _query(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db, timeout=5)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _wait_for(db: Path, sql: str, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.exists():
            try:
                if len(_query(db, sql)) >= count:
                    return
            except sqlite3.OperationalError:
                pass  # tables not created yet
        time.sleep(0.05)
    raise AssertionError(f"record never showed {count} rows for {sql}")


def test_changed_host_key_and_refused_key_are_permanent(
    tmp_path: Path, fake_mirror: MirrorFactory, syncd: Syncd
) -> None:
    changed = fake_mirror("changed.test", "ok")
    refused = fake_mirror("refused-key.test", "ok")
    other = generate_keypair(tmp_path / "other_ed25519", "not-the-pusher")
    refused.sshd.set_authorized_keys([other.public_line])
    syncd.write(
        changed.inventory_block(host_keys=[refused.sshd.host_key_line]) + refused.inventory_block()
    )
    code, doc, err = syncd.publish(*EXPECT)
    assert code == 1
    got = by_name(doc)
    assert got["changed.test"]["outcome"] == "host_key_mismatch"
    assert got["refused-key.test"]["outcome"] == "auth_failed"
    assert got["changed.test"]["attempts"] == 1 and got["refused-key.test"]["attempts"] == 1
    assert changed.requests == [] and refused.requests == []  # nothing ran on either
    assert "HOST KEY CHANGED" in err
    assert f"ssh-keyscan -p {changed.sshd.port} 127.0.0.1" in err
    assert "syncd mirrors pin changed.test --host-key" in err
    # re-pinning after the admin confirmed the key makes the next publish succeed
    pin = syncd.run(
        "mirrors",
        "pin",
        "changed.test",
        "--config",
        str(syncd.config),
        "--host-key",
        changed.sshd.host_key_line,
    )
    assert pin.returncode == 0, pin.stderr
    code, doc, err = syncd.publish(*EXPECT, "--mirror", "changed.test")
    assert code == 0, err
    assert by_name(doc)["changed.test"]["outcome"] == "ok"


def test_sigkill_then_resume_finishes_each_mirror_exactly_once(
    fake_mirror: MirrorFactory, syncd: Syncd
) -> None:
    fast = [fake_mirror(f"fast{i}.test", "ok") for i in range(3)]
    slow = [fake_mirror(f"slow{i}.test", "slow") for i in range(2)]
    syncd.write("".join(m.inventory_block() for m in fast + slow))
    proc = syncd.popen("publish", "--config", str(syncd.config), *EXPECT)
    try:
        _wait_for(syncd.state, "SELECT 1 FROM publish_targets WHERE outcome = 'ok'", 3)
        proc.kill()
    finally:
        proc.communicate(timeout=10)
    ((run_id,),) = _query(syncd.state, "SELECT run_id FROM publish_runs")
    pending = _query(syncd.state, "SELECT mirror FROM publish_targets WHERE outcome IS NULL")
    assert sorted(p[0] for p in pending) == ["slow0.test", "slow1.test"]

    code, doc, err = syncd.publish("--resume", str(run_id))
    assert code == 0, err
    assert doc["run_id"] == run_id
    assert {m["name"]: m["outcome"] for m in doc["mirrors"]} == {m.name: "ok" for m in fast + slow}
    for m in fast:
        assert len(m.requests) == 1  # not pushed again
    for m in slow:
        assert len(m.requests) == 2  # the killed push, then the resumed one
        assert all(r.startswith(f"sync run-id={run_id} ") for r in m.requests)
    done = _query(
        syncd.state,
        f"SELECT mirror, count(*) FROM publish_attempts WHERE run_id = '{run_id}' "
        "AND verdict = 'ok' GROUP BY mirror",
    )
    assert sorted(done) == sorted((m.name, 1) for m in fast + slow)
    assert _query(syncd.state, "SELECT state, invocations FROM publish_runs") == [("finished", 2)]
    show = syncd.run("runs", "show", str(run_id), "--config", str(syncd.config))
    assert show.returncode == 0 and "unfinished" in show.stdout  # the killed attempts


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_cancels_cleanly_and_records_cancelled(
    signum: signal.Signals, fake_mirror: MirrorFactory, syncd: Syncd
) -> None:
    fast = fake_mirror("fast.test", "ok")
    hung = [fake_mirror(f"hung{i}.test", "hang") for i in range(2)]
    syncd.write(
        "".join(m.inventory_block() for m in [fast, *hung]),
        policy="[policy]\ncommand_timeout = 60\nrun_timeout = 120\n",
    )
    proc = syncd.popen("publish", "--config", str(syncd.config), "--json", *EXPECT)
    try:
        _wait_for(syncd.state, "SELECT 1 FROM publish_targets WHERE outcome = 'ok'", 1)
        _wait_for(syncd.state, "SELECT 1 FROM publish_attempts WHERE verb = 'sync'", 3)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    time.sleep(0.3)
    started = time.monotonic()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=15)
    assert time.monotonic() - started < 5
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    outcomes = {m["name"]: m["outcome"] for m in json.loads(out)["mirrors"]}
    assert outcomes == {"fast.test": "ok", "hung0.test": "cancelled", "hung1.test": "cancelled"}
    assert _query(syncd.state, "SELECT state FROM publish_runs") == [("cancelled",)]
    unfinished = _query(syncd.state, "SELECT 1 FROM publish_attempts WHERE finished_at IS NULL")
    assert unfinished == []
    assert "syncd publish --resume" in err


def test_sigkill_amid_batched_writes_loses_no_reported_end_and_resume_pushes_only_the_rest(
    fake_mirror: MirrorFactory, syncd: Syncd
) -> None:
    """The record's writer commits the writes that queue up together (group commit) and
    tells a push its write is done only once committed: killed while many mirrors end at
    once, every mirror it reported ended is in the record, and the resume pushes to the
    others only."""
    fast = [fake_mirror(f"fast{i}.test", "ok") for i in range(8)]
    slow = [fake_mirror(f"slow{i}.test", "slow") for i in range(2)]
    syncd.write("".join(m.inventory_block() for m in fast + slow))
    proc = syncd.popen("publish", "--config", str(syncd.config), *EXPECT)
    watchdog = threading.Timer(30, proc.kill)  # bounded: never waits past 30 s for a line
    watchdog.start()
    reported: list[str] = []  # "[k/10] NAME: ok" lines: printed once the write is committed
    try:
        assert proc.stderr is not None
        for _ in range(100):
            line = proc.stderr.readline()
            if not line:
                break
            if line.startswith("syncd: [") and line.rstrip().endswith(": ok"):
                reported.append(line.split("] ", 1)[1].rsplit(":", 1)[0])
                proc.kill()  # at the first end: the others' writes are in flight
                break
    finally:
        watchdog.cancel()
        proc.kill()
        proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL and reported, reported
    ((run_id,),) = _query(syncd.state, "SELECT run_id FROM publish_runs")
    recorded = {
        r[0] for r in _query(syncd.state, "SELECT mirror FROM publish_targets WHERE outcome = 'ok'")
    }
    assert set(reported) <= recorded  # every end it reported was committed first
    assert not recorded & {m.name for m in slow}
    before = _settled({m.name: m for m in fast + slow})

    code, doc, err = syncd.publish("--resume", str(run_id))
    assert code == 0, err
    assert {m["name"]: m["outcome"] for m in doc["mirrors"]} == {m.name: "ok" for m in fast + slow}
    for m in fast + slow:
        again = len(m.requests) - before[m.name]
        assert again == (0 if m.name in recorded else 1), (m.name, m.requests)
    attempts = _query(
        syncd.state,
        f"SELECT mirror, verdict FROM publish_attempts WHERE run_id = '{run_id}' ORDER BY id",
    )
    assert {name for name, verdict in attempts if verdict == "ok"} == {m.name for m in fast + slow}
    # every attempt of both invocations is shown, the killed ones as unfinished
    show = syncd.run("runs", "show", str(run_id), "--config", str(syncd.config))
    assert show.returncode == 0
    assert all(m.name in show.stdout for m in fast + slow)


def _settled(
    mirrors: dict[str, FakeMirror], quiet: float = 0.5, timeout: float = 10
) -> dict[str, int]:
    """Each mirror's request count once none has changed for `quiet` seconds: a session the
    killed syncd had opened may still log its command a moment after the kill."""
    counts = {name: len(m.requests) for name, m in mirrors.items()}
    deadline = time.monotonic() + timeout
    stable_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - stable_since < quiet:
        time.sleep(0.05)
        now = {name: len(m.requests) for name, m in mirrors.items()}
        if now != counts:
            counts, stable_since = now, time.monotonic()
    return counts
