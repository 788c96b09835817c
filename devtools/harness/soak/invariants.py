"""The soak's invariants, checked by code after every round: each returns the violations it
found (an empty list when the invariant holds)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx

from devtools.harness.faults import (
    REAP_WAIT_S,
    CvdReaders,
    RsyncOverlap,
    held_locks,
    open_fds,
    secret_hits,
    staging_leftovers,
    tree_holders,
    wait_no_leaks,
)
from devtools.harness.soak import record
from devtools.harness.soak.fleet import Fleet

OUTCOMES = {"ok", "failed", "unreachable", "timeout", "auth_failed", "host_key_mismatch"}
OUTCOMES |= {"cancelled"}


def after_round(
    fleet: Fleet, run_id: str | None, doc: dict[str, Any], output: str, fds_before: int
) -> list[str]:
    """Every invariant that must hold once the round's (resumed) run has ended."""
    v: list[str] = []
    names = sorted(fleet.names)
    if run_id:
        v += targets_violations(fleet, run_id)
    if doc:
        got = [m.get("name") for m in doc.get("mirrors", [])]
        if sorted(got) != names:
            v.append(f"summary lists {got}, expected each of {names} once")
    for m in fleet.mirrors:
        if (m.docroot / "local_test").read_text() != "Success":
            v.append(f"{m.name}: local_test changed")
        keep = m.docroot / "local_keep.txt"
        if not keep.exists() or keep.read_text() != m.keep_token:
            v.append(f"{m.name}: local_keep.txt lost or changed")
        v += [f"{m.name}: left half done: {path}" for path in staging_leftovers(m.docroot)]
    v += leftover_processes(fleet)
    v += [f"lock still held: {p}" for p in held_locks(m.state / "lock" for m in fleet.mirrors)]
    v += [f"temp left by syncd: {p}" for p in (fleet.syncd_dir / "tmp").iterdir()]
    fds = open_fds()
    for _ in range(30):
        if fds <= fds_before:
            break
        time.sleep(0.1)
        fds = open_fds()
    if fds > fds_before:
        v.append(f"file descriptors of the test process: {fds_before} -> {fds}")
    v += secrets(fleet, output)
    v += served(fleet)
    return v


def fault_fired(name: str, evidence: str | None) -> list[str]:
    """A round whose fault did not fire proved nothing: that is a failure of the suite."""
    if evidence is None and name != "none":
        return [f"{name} did not fire this round: the round proved nothing"]
    return []


def leftover_processes(fleet: Fleet) -> list[str]:
    """Once the round's runs have ended, nothing of theirs lives on: no session, client or rsync
    (only a short wait for what is being reaped), and nothing holds a mirror's tree."""
    servers = [*fleet.server_pids, *fleet.foreign]
    v = [f"leaked process: {p}" for p in wait_no_leaks(fleet.root, servers, REAP_WAIT_S)]
    holders = tree_holders(fleet.root / "mirrors", exclude=fleet.server_pids)
    return v + [f"process holding a mirror's tree: {p}" for p in holders]


def targets_violations(fleet: Fleet, run_id: str) -> list[str]:
    """The run is recorded whole: one final outcome per mirror, and not left running."""
    names = sorted(fleet.names)
    rows, state = record.targets(fleet.state_db, run_id)
    v = []
    count = Counter(r[0] for r in rows)
    if sorted(count) != names or any(n != 1 for n in count.values()):
        v.append(f"run {run_id}: targets {dict(count)}, expected one row per {names}")
    for mirror, outcome in rows:
        if outcome not in OUTCOMES:
            v.append(f"run {run_id}: {mirror} has no final outcome ({outcome!r})")
    if state == "running":
        v.append(f"run {run_id} still marked running after syncd exited")
    return v


def resume_redid(run_id: str, done_before: dict[str, int], after: dict[str, int]) -> list[str]:
    """A resume never pushes again to a mirror the run already had ok."""
    return [
        f"resume redid {mirror}, already ok in run {run_id}: attempts "
        f"{count} -> {after.get(mirror, 0)}"
        for mirror, count in done_before.items()
        if after.get(mirror, 0) != count
    ]


def observed(readers: CvdReaders, overlap: RsyncOverlap) -> list[str]:
    """What the observers saw during the round: readers only ever got whole, valid CVDs, and
    no two rsyncs wrote one tree at once."""
    return [f"reader got a bad CVD: {b}" for b in readers.bad] + [
        f"two rsyncs on one tree: {o}" for o in overlap.overlaps
    ]


def secrets(fleet: Fleet, output: str) -> list[str]:
    """No secret (the rsync password, the pusher's private key) outside the files meant for it."""
    # the body's first lines are the same for every ed25519 key (magic, public key): the
    # lines after them carry the private half
    key_lines = fleet.key.private.read_text().splitlines()[1:-1]
    needles = [fleet.password, *(ln for ln in key_lines[2:] if len(ln) >= 24)]
    allowed = {fleet.key.private, fleet.rsyncd[0].secrets_path, fleet.rsyncd[1].secrets_path}
    allowed |= {m.conf for m in fleet.mirrors}
    roots = [fleet.root / d for d in ("mirrors", "syncd", "sshd", "nginx", "rsyncd")]
    return [
        f"secret found: {h}" for h in secret_hits(needles, roots, {"syncd output": output}, allowed)
    ]


def served(fleet: Fleet) -> list[str]:
    """After the (resumed) run, every mirror serves at least this round's daily."""
    v = []
    with httpx.Client(trust_env=False, timeout=5) as client:
        for m in fleet.mirrors:
            resp = client.get(
                f"{m.web.base_url}/daily.cvd",
                headers={"Host": "db.test.clamav.net", "Range": "bytes=0-511"},
            )
            version = (
                int(resp.content.decode("ascii").split(":")[2]) if resp.status_code == 206 else -1
            )
            if version < fleet.daily:
                v.append(f"{m.name} serves daily {version} < {fleet.daily} after the run")
    return v
