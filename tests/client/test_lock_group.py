"""rsync's leader killed alone: its receiver must not outlive the sync, nor the lock.

A SIGKILL of the leader (the generator, in a pull) leaves its forked receiver running in the same
process group, still writing into staging. The client must kill and wait for the whole group
before it goes on, and the lock must stay held until no process of that group runs.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import signal
import time
from pathlib import Path

from devtools.harness.cvd import write_release
from tests.client.conftest import R1, Mirror, fresh_mtime

REAL_RSYNC = "/usr/bin/rsync"


def _stat(pid: int) -> tuple[str, int] | None:
    """Return (state, pgrp) of `pid`, or None when it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    return fields[0].decode(), int(fields[2])


def _alive(pid: int, pgid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] != "Z" and st[1] == pgid


def _rsync_group(to: Path) -> dict[int, list[int]]:
    """Return the process groups of the rsyncs writing into `to`: pgid -> member pids."""
    groups: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd[0] != REAL_RSYNC.encode() or not any(str(to).encode() in c for c in cmd):
            continue
        st = _stat(int(name))
        if st is not None and st[0] != "Z":
            groups.setdefault(st[1], []).append(int(name))
    return groups


def _can_lock(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing our own description ends our probe's lock
    return True


def _probe(directory: Path, receivers: list[int], marker: Path) -> Path:
    """An 'rsync' that records any of `receivers` still running when it starts."""
    script = directory / "probe-rsync"
    checks = "".join(
        f'if [ -r /proc/{pid}/stat ] && [ "$(cut -d" " -f3 /proc/{pid}/stat)" != Z ]; then '
        f'echo "receiver {pid} runs beside a second rsync" >> "{marker}"; fi\n'
        for pid in receivers
    )
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "--version" ]; then exec {REAL_RSYNC} "$@"; fi\n' + checks + "exit 0\n"
    )
    script.chmod(0o755)
    return script


def test_leader_killed_alone_leaves_no_receiver_and_holds_the_lock_until_all_are_gone(
    mirror: Mirror, source_tree: Path, tmp_path: Path
) -> None:
    big = write_release(source_tree, 28051, payload_size=3_000_000)
    fresh_mtime(*big.values())
    # the daemon sends slowly (--bwlimit is passed to the sender), so the receiver is caught
    # mid-file; exec keeps the pid: the leader is rsync itself
    slow = tmp_path / "bwlimit-rsync"
    slow.write_text(f'#!/bin/sh\nexec {REAL_RSYNC} --bwlimit=3000 "$@"\n')
    slow.chmod(0o755)
    one_source = mirror.keys["SOURCES"].split()[0]
    assert one_source.startswith(R1 + "=")
    mirror.write_config(RSYNC=str(slow), SOURCES=one_source)
    overlap = tmp_path / "overlap"
    second_sync = dataclasses.replace(mirror, config=mirror.root / "second.conf", keys={})
    first = mirror.popen(command="sync run-id=first")
    try:
        deadline = time.monotonic() + 20
        groups: dict[int, list[int]] = {}
        while time.monotonic() < deadline:
            groups = _rsync_group(mirror.to)
            if any(len(members) >= 2 for members in groups.values()):
                break
            time.sleep(0.01)
        ((pgid, members),) = groups.items()
        assert pgid in members and len(members) >= 2, groups
        receivers = [p for p in members if p != pgid]
        second_sync.write_config(
            **{**mirror.keys, "RSYNC": str(_probe(tmp_path, receivers, overlap))}
        )
        time.sleep(0.3)  # some of the file is on its way
        os.kill(pgid, signal.SIGKILL)  # the leader only, not the group
        # a second sync of the same tree, at once: its rsync must never run beside a receiver
        second = second_sync.popen(command="sync run-id=second")
        lock = mirror.state / "lock"
        probes = taken_while_alive = 0
        deadline = time.monotonic() + 30
        while first.poll() is None and time.monotonic() < deadline:
            probes += 1
            if _can_lock(lock) and any(_alive(p, pgid) for p in receivers):
                taken_while_alive += 1
            time.sleep(0.002)
        out, err = first.communicate(timeout=30)
        second_out, _ = second.communicate(timeout=60)
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert probes > 0
    assert taken_while_alive == 0, "the lock was free while the first sync's receiver still ran"
    assert not [p for p in receivers if _alive(p, pgid)], "a receiver outlived its sync"
    assert not _rsync_group(mirror.to)
    rep = json.loads(out)
    # the killed round failed; the second push, when it came in time to be queued, made the
    # first sync go round once more (and that round transferred the release)
    assert rep["status"] == "failed" or (rep["status"] == "ok" and rep["rounds"] == 2), err
    assert json.loads(second_out)["status"] in ("ok", "queued", "failed")
    assert not overlap.exists(), overlap.read_text()
    # the lock is free, and a second sync publishes the release whole
    assert _can_lock(mirror.state / "lock")
    mirror.write_config(RSYNC=REAL_RSYNC)
    after = mirror.run().report
    assert after["status"] == "ok", after
    assert (mirror.to / "daily.cvd").read_bytes() == big["daily"].read_bytes()
