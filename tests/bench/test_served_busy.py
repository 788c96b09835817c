"""What benchmarks/served.py's busy sources rest on: a real rsync daemon at its ``max
connections`` answers the next client busy, which the client classifies ``rsync_busy``; and the
figures served.py draws from a syncd record (busy answers, the pacing's capacity, the failed
mirrors' attempts)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from benchmarks.served import record_digest
from clientside.core.rsyncplan import classify
from devtools.harness.binaries import require
from devtools.harness.rsyncd import RsyncDaemon
from syncd.publish.store import PublishStore
from syncd.sqlite import open_db

ROOT = Path(__file__).resolve().parents[2]


def _hold_a_slot(daemon: RsyncDaemon) -> socket.socket:
    """Open a daemon connection that has asked for the module (so it holds one of the
    module's connections) and wait at its auth challenge."""
    s = socket.create_connection((daemon.host, daemon.port), timeout=10)
    s.recv(100)  # the daemon's greeting
    s.sendall(b"@RSYNCD: 31.0\n" + daemon.module.encode() + b"\n")
    got = b""
    while b"AUTHREQD" not in got and len(got) < 1000:
        chunk = s.recv(100)
        if not chunk:
            break
        got += chunk
    assert b"AUTHREQD" in got, got
    return s


def test_a_daemon_at_max_connections_answers_busy(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "daily.cvd").write_bytes(b"x" * 100)
    with RsyncDaemon(tmp_path / "rsyncd", tree, max_connections=1) as daemon:
        held = _hold_a_slot(daemon)
        try:
            out = subprocess.run(
                [
                    require("rsync"),
                    "--list-only",
                    f"rsync://{daemon.user}@{daemon.host}:{daemon.port}/{daemon.module}/",
                ],
                capture_output=True,
                text=True,
                env={**os.environ, "RSYNC_PASSWORD": daemon.password},
                timeout=30,
                check=False,
            )
        finally:
            held.close()
    assert out.returncode == 5, out
    assert "@ERROR: max connections (1) reached" in out.stdout + out.stderr
    outcome = classify(out.returncode, out.stdout + out.stderr)
    assert (outcome.verdict, outcome.kind, outcome.failover) == ("transient", "rsync_busy", True)


def _report(attempts: list[tuple[str, str | None]], kind: str | None) -> dict[str, object]:
    return {
        "status": "failed" if kind else "ok",
        "attempts": [{"source": s, "exit_code": 5 if e else 0, "error": e} for s, e in attempts],
        "error": {"kind": kind, "message": "busy"} if kind else None,
    }


BUSY = "rsync_busy: @ERROR: max connections (2) reached -- try again later"


def test_the_record_digest_counts_busy_answers_and_replays_the_pacing(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    store = PublishStore(open_db(db))
    mirrors = [f"m{i}" for i in range(6)]
    store.create_run(
        "r1", 100.0, expected={"daily": 2}, request="sync", inventory=None, mirrors=mirrors
    )
    pushes = [  # mirror, start, end, source, report, verdict
        # four at once on a: one answered busy on a, then on b (the client fails over)
        ("m0", 100.0, 104.0, "a", _report([("a", None)], None), "ok"),
        ("m1", 100.0, 104.0, "a", _report([("a", None)], None), "ok"),
        ("m2", 100.0, 104.0, "a", _report([("a", None)], None), "ok"),
        ("m3", 100.0, 101.0, "a", _report([("a", BUSY), ("b", BUSY)], "rsync_busy"), "retry"),
        ("m3", 102.0, 105.0, "a", _report([("a", None)], None), "ok"),
        ("m4", 100.0, 100.5, "b", _report([("b", None)], None), "ok"),
        (
            "m5",
            101.0,
            103.0,
            "b",
            _report([("b", "rsync_busy: x"), ("a", BUSY)], "rsync_busy"),
            "retry",
        ),
    ]
    for mirror, start, end, source, report, verdict in pushes:
        attempt, _ = store.start_attempt("r1", mirror, "sync", start, source=source)
        store.finish_attempt(
            attempt,
            end,
            verdict=verdict,
            outcome="ok" if verdict == "ok" else "failed",
            exit_status=0 if verdict == "ok" else 75,
            error=None if verdict == "ok" else BUSY,
            report=report,
        )
    for mirror in mirrors:
        failed = mirror == "m5"
        store.finish_target(
            "r1",
            mirror,
            106.0,
            outcome="failed" if failed else "ok",
            error=BUSY if failed else None,
            report=None,
        )
    digest = record_digest(db, max_transfers=8)
    assert digest["busy_rsync_answers"] == {"a": 2, "b": 2}
    assert digest["busy_pushes"] == 2
    assert digest["attempts"] == {"sync ok": 5, "sync retry": 2}
    assert digest["in_flight"]["a"]["peak"] == 4
    # m3's busy answer halves a's 4 in flight to 2 (b: 1 in flight, 1), m5's a's 3 to 1; then
    # a serves m0, m1, m2: one slot back after 1 served, another after 2
    assert digest["capacity"] == {
        "a": {"min": 1, "median_late": 2, "last": 3},
        "b": {"min": 1, "median_late": 1, "last": 1},
    }
    failed = digest["failed"]["m5"]
    assert (failed["outcome"], failed["attempts"]) == ("failed", 1)
    assert failed["tries"] == [
        {
            "number": 1,
            "verb": "sync",
            "start_s": 1.0,
            "end_s": 3.0,
            "verdict": "retry",
            "error": BUSY,
        }
    ]


def test_a_negative_max_connections_is_refused_in_one_line() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.served", "--max-connections", "-1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert out.returncode != 0
    assert out.stderr.strip().splitlines() == [
        "--max-connections must be 0 (no limit) or more, e.g. 20"
    ]
