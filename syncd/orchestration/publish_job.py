"""One ``syncd publish`` end to end: open the record, create (or reopen, for ``--resume``) the
run, load the pusher key and the pinned host keys, open the trio-asyncio loop and the HTTP
client, run the fan-out (`syncd.orchestration.publish.Publisher`), close the run."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from pushwire.request import RequestError, render_request
from syncd.adapters import mirrorhttp
from syncd.adapters.aioloop import open_aio_loop
from syncd.adapters.publishstore import PublishStore
from syncd.adapters.sqlite import open_db
from syncd.adapters.ssh import PinnedSsh, raise_nofile_limit
from syncd.core.config import Policy
from syncd.core.inventory import Inventory, Mirror
from syncd.core.outcome import Outcome
from syncd.core.plan import PlanError, plan
from syncd.core.report import clean
from syncd.core.request import new_run_id
from syncd.core.summary import MirrorResult
from syncd.orchestration.publish import NoProgress, Progress, Prover, Publisher


def http_prover(client: httpx.AsyncClient) -> Prover:
    """Return a prover that reads each CVD header the mirror serves over HTTP (Range GET of
    512 bytes, redirects refused) and returns the first problem, or None when it serves the
    release on every address family."""

    async def prove(mirror: Mirror, expected: Mapping[str, int]) -> str | None:
        assert mirror.http is not None
        host = f"db.{mirror.country.lower()}.clamav.net"
        try:
            for target in await mirrorhttp.targets(mirror.http, host):
                served = await mirrorhttp.check(client, target, sorted(expected))
                for db, want in sorted(expected.items()):
                    have = served.versions.get(db, -1)
                    if have < want:
                        return f"http ({served.family}): serves {db} {have}, release is {want}"
        except mirrorhttp.CheckFailed as err:
            return f"http: {clean(str(err), 300)}"
        return None

    return prove


class PublishSetupError(ValueError):
    """The publish cannot start (bad key, unknown run to resume...); one line for the user."""


@dataclass
class PublishJob:
    key: Path
    state: Path
    inventory: Inventory
    inventory_path: str
    policy: Policy
    expected: dict[str, int] = field(default_factory=dict)
    resume: str | None = None
    only: list[str] = field(default_factory=list)


@dataclass
class PublishOutcome:
    run_id: str
    expected: dict[str, int]
    results: list[MirrorResult]
    cancelled: bool


def _begin(job: PublishJob, store: PublishStore) -> tuple[str, dict[str, int], list[Mirror]]:
    """Create the run (or reopen the one to resume); return its id, release and mirrors."""
    try:
        if job.resume is None:
            if not job.expected:
                raise PublishSetupError(
                    "no release to publish: give --source-tree DIR or --expect daily=N ..."
                )
            mirrors = plan(job.inventory, only=job.only, last_duration=store.last_durations())
            if not mirrors:
                raise PublishSetupError("no active mirror to publish to")
            run_id = new_run_id(datetime.now(UTC), secrets.token_hex(3))
            store.create_run(
                run_id,
                time.time(),
                expected=job.expected,
                request=render_request("sync", run_id, job.expected),
                inventory=job.inventory_path,
                mirrors=[m.name for m in mirrors],
            )
            return run_id, job.expected, mirrors
        run = store.run(job.resume)
        if run is None:
            raise PublishSetupError(
                f"no run {job.resume!r} in {job.state}: see 'syncd status' for recent runs"
            )
        targets = store.targets(run.run_id)
        pending = [t.mirror for t in targets if t.outcome != Outcome.OK.value]
        known = {m.name for m in job.inventory.mirrors}
        missing = sorted(set(pending) - known)
        if missing:
            raise PublishSetupError(
                f"cannot resume {run.run_id}: not in the inventory any more: {', '.join(missing)}"
            )
        if job.only:
            pending = [name for name in pending if name in job.only]
        mirrors = plan(
            job.inventory,
            only=pending,
            done=[t.mirror for t in targets if t.outcome == Outcome.OK.value],
            last_duration=store.last_durations(),
        )
        store.reopen_run(run.run_id)
        return run.run_id, run.expected, mirrors
    except (PlanError, RequestError) as err:
        raise PublishSetupError(str(err)) from None


def _recorded_ok(store: PublishStore, run_id: str, inventory: Inventory) -> list[MirrorResult]:
    out = []
    for t in store.targets(run_id):
        if t.outcome == Outcome.OK.value:
            m = inventory.get(t.mirror)
            out.append(
                MirrorResult(
                    t.mirror,
                    Outcome.OK,
                    t.attempts,
                    None,
                    t.report,
                    m.host if m else "",
                    m.port if m else 22,
                    tuple(m.admins) if m else (),
                )
            )
    return out


async def publish_main(
    job: PublishJob, progress: Progress | None = None, *, handle_signals: bool = True
) -> PublishOutcome:
    """Run one publish (or finish one with ``resume``) end to end; return its outcome.
    Raise PublishSetupError (or StoreError, SshSetupError) when it cannot start."""
    conn = open_db(job.state)
    try:
        store = PublishStore(conn)
        ssh = PinnedSsh(job.key, job.policy)
        run_id, expected, mirrors = _begin(job, store)
        ssh.prepare(mirrors)
        raise_nofile_limit(64 + 2 * len(mirrors) + 2 * job.policy.session_concurrency)
        async with (
            open_aio_loop(job.policy.ssh_loop) as aio,
            mirrorhttp.new_client(
                job.policy.http_timeout, job.policy.handshake_concurrency
            ) as client,
        ):
            ssh.aio = aio
            publisher = Publisher(
                ssh,
                store,
                run_id,
                expected,
                job.policy,
                progress or NoProgress(),
                http_prover(client) if job.policy.http_check else None,
                handle_signals=handle_signals,
            )
            fresh = await publisher.run(mirrors)
        fresh_names = {r.name for r in fresh}
        earlier = [
            r for r in _recorded_ok(store, run_id, job.inventory) if r.name not in fresh_names
        ]
        store.finish_run(run_id, time.time(), "cancelled" if publisher.cancelled else "finished")
        return PublishOutcome(run_id, expected, earlier + fresh, publisher.cancelled)
    finally:
        conn.close()
