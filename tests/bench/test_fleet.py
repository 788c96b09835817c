"""The simulated fleet behaves as its profile says, so the benchmark's outcome check means
something: every fault kind, seen through a minimal asyncssh client, ends as expected."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from devtools.harness.simfleet import EXPECTED, FAULTS, Fleet, address, draw, make

ROOT = Path(__file__).resolve().parents[2]


def test_profiles_are_seeded_and_addresses_distinct() -> None:
    a = draw(300, 7, fault_rate=0.5, rtt_ms=(10, 100), rsync_s=(0.1, 1.0))
    b = draw(300, 7, fault_rate=0.5, rtt_ms=(10, 100), rsync_s=(0.1, 1.0))
    assert a == b
    assert len({m.host for m in a}) == 300
    assert all(m.host.startswith("127.") and m.host != "127.0.0.1" for m in a)
    assert {m.fault for m in a} == {None, *FAULTS}
    assert address(0) != address(255) != address(256)


def test_every_fault_is_seen_for_what_it_is(tmp_path: Path) -> None:
    make(tmp_path, 24, seed=5, fault_rate=0.8, rtt_ms=(0, 20), rsync_s=(0.0, 0.2))
    faults = {p["name"]: p["fault"] for p in json.loads((tmp_path / "profiles.json").read_text())}
    assert set(faults.values()) == {None, *FAULTS}
    out = tmp_path / "out.json"
    env = {**os.environ, "BENCH_CONNECT_TIMEOUT": "2", "BENCH_COMMAND_TIMEOUT": "3"}
    with Fleet(tmp_path, processes=1):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.contenders",
                "asyncio",
                "--inventory",
                str(tmp_path / "inventory.toml"),
                "--key",
                str(tmp_path / "pusher_ed25519"),
                "--out",
                str(out),
                "--run-id",
                "t1",
            ],
            check=True,
            cwd=ROOT,
            env=env,
            timeout=120,
        )
    outcomes = json.loads(out.read_text())["outcomes"]
    want = {n: ("failed" if f == "fail_first" else EXPECTED[f]) for n, f in faults.items()}
    assert outcomes == want
    # the fleet logged each mirror that ended ok, for the time-to-N% figures
    logged = {ln.split()[2] for ln in (tmp_path / "events-0.log").read_text().splitlines()}
    assert logged == {n for n, f in faults.items() if f is None}
