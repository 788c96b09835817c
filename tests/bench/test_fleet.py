"""The simulated fleet behaves as its profile says, so the benchmark's outcome check means
something: every fault kind, seen through a minimal asyncssh client, ends as expected."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncssh

from devtools.harness.simfleet import EXPECTED, FAULTS, Fleet, address, draw, make, write_exec

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


def test_an_exec_mirror_runs_the_command_its_key_selects(tmp_path: Path) -> None:
    """With exec.json the session runs the given command (source appended, the pushed command
    in SSH_ORIGINAL_COMMAND), its stdout and exit code the session's; many at once."""
    make(tmp_path, 6, seed=3, fault_rate=0.0, rtt_ms=(0, 0), rsync_s=(0, 0))
    profiles = json.loads((tmp_path / "profiles.json").read_text())
    script = tmp_path / "client.py"
    script.write_text(
        "import os, sys\n"
        "print(sys.argv[-1], os.environ['SSH_ORIGINAL_COMMAND'], os.getcwd())\n"
        "sys.exit(3 if sys.argv[-1] == 'rsync2' else 0)\n"
    )
    keys = {s: asyncssh.generate_private_key("ssh-ed25519") for s in ("rsync1", "rsync2")}
    publics = {s: k.export_public_key("openssh").decode().strip() for s, k in keys.items()}
    homes = {p["name"]: str(tmp_path) for p in profiles}
    write_exec(
        tmp_path, {p["name"]: [sys.executable, str(script)] for p in profiles}, publics, homes=homes
    )

    async def push(host: str, port: int, source: str) -> tuple[str, int | None]:
        async with asyncssh.connect(
            host,
            port,
            username="u",
            client_keys=[keys[source]],
            known_hosts=None,
            connect_timeout=20,
        ) as conn:
            result = await conn.run("sync run-id=r1", check=False)
            return str(result.stdout), result.exit_status

    async def push_all() -> list[tuple[str, int | None]]:
        return await asyncio.gather(
            *(
                push(p["host"], p["port"], "rsync1" if i % 2 else "rsync2")
                for i, p in enumerate(profiles)
            )
        )

    with Fleet(tmp_path, processes=1):
        got = asyncio.run(push_all())
    for i, (out, status) in enumerate(got):
        source = "rsync1" if i % 2 else "rsync2"
        assert out == f"{source} sync run-id=r1 {tmp_path}\n"
        assert status == (0 if source == "rsync1" else 3)
