"""One ``syncd publish`` end to end: open the record (its writer thread), take the run's lock
(`syncd.publish.runlock`: one publisher per run), create (or reopen, for ``--resume``) the
run, load the pusher key and the pinned host keys, open the asyncio loop and the HTTP client,
run the fan-out (`syncd.publish.fanout.Publisher`), close the run.

A write to the record that fails once the run is under way (a full disk, a lock held past the
busy timeout) stops no push: every mirror ends, the run is closed ``failed`` if that write
can still be made (else it stays ``running`` with its lock free, which ``syncd status`` shows
as ``interrupted``), and the outcome carries the error for the summary and the JSON."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from pushwire.request import RequestError, render_request
from syncd.errors import SyncdError
from syncd.inventory.model import Inventory, Mirror
from syncd.publish.aioloop import open_aio_loop
from syncd.publish.config import Policy, SourceConfig
from syncd.publish.fanout import NoProgress, Progress, Prover, Publisher
from syncd.publish.outcome import PushOutcome
from syncd.publish.plan import PlanError, order_seconds, plan
from syncd.publish.recordwriter import BUSY_TIMEOUT_S, PATIENCE_S, RecordWriter, open_record
from syncd.publish.request import new_run_id
from syncd.publish.runlock import hold_run
from syncd.publish.sources import Decision, SourceSpec, measured_rates, plan_tiers
from syncd.publish.ssh import PinnedSsh, raise_nofile_limit
from syncd.publish.store import PublishStore
from syncd.publish.summary import MirrorResult, Proof
from syncd.release.manifest import CvdTail, ReleaseFile
from syncd.sqlite import StoreError
from syncd.text import clean

if TYPE_CHECKING:
    import httpx


def http_prover(
    client: httpx.AsyncClient,
    min_timestamp: int | None = None,
    files: Sequence[ReleaseFile] = (),
    tails: Sequence[CvdTail] = (),
) -> Prover:
    """Return a prover that reads each CVD header the mirror serves over HTTP (Range GET of
    512 bytes, redirects refused) and returns the first problem, or None when it serves the
    release on every address family: its CVD headers, the last bytes of each CVD as in
    `tails` (the source tree's), each of `files` whole and byte for byte (the current cdiff
    and signature files), and, given `min_timestamp`, a ``timestamp`` at
    least that recent (the heartbeat's proof)."""
    # httpx only with http_check: a prover is made only then
    from syncd.httpcheck import client as mirrorhttp

    async def prove(mirror: Mirror, expected: Mapping[str, int]) -> str | None:
        assert mirror.http is not None
        host = f"db.{mirror.country.lower()}.clamav.net"
        try:
            for target in await mirrorhttp.targets(mirror.http, host):
                served = await mirrorhttp.check(client, target, sorted(expected), files, tails)
                for db, want in sorted(expected.items()):
                    have = served.versions.get(db, -1)
                    if have < want:
                        return f"http ({served.family}): serves {db} {have}, release is {want}"
                if served.incomplete:
                    return f"http ({served.family}): {served.incomplete[0]}"
                if min_timestamp is not None and served.timestamp < min_timestamp:
                    return (
                        f"http ({served.family}): serves timestamp {int(served.timestamp)}, "
                        f"the heartbeat pushed {min_timestamp}"
                    )
        except mirrorhttp.CheckFailed as err:
            return f"http: {clean(str(err), 300)}"
        return None

    return prove


class PublishSetupError(SyncdError, ValueError):
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
    files: tuple[ReleaseFile, ...] = ()  # served whole or not ok (syncd.release.manifest)
    files_for: dict[str, int] = field(default_factory=dict)  # the release `files` belong to
    tails: tuple[CvdTail, ...] = ()  # the tree's CVD tails, compared with each mirror's
    kind: str = "release"  # "heartbeat": the same release, a newer timestamp
    heartbeat_stamp: int | None = None  # the timestamp a heartbeat pushes (and proves served)
    record_timeout: float = BUSY_TIMEOUT_S  # how long a write waits for SQLite's write lock
    sources: list[SourceConfig] = field(default_factory=list)  # [[sources]]; empty: `key` only
    pins: dict[str, str] = field(default_factory=dict)  # db -> md5 of the tree's CVDs (hubs)


@dataclass
class RunOutcome:
    """How one publish run ended: its id, the release it pushed, each mirror's result, whether
    it was cancelled, and whether the record lost writes."""

    run_id: str
    expected: dict[str, int]
    results: list[MirrorResult]
    cancelled: bool
    record_error: str | None = None  # the record lost writes: the first error, and how many


def _begin(
    job: PublishJob, run_id: str, store: PublishStore
) -> tuple[str, dict[str, int], list[Mirror]]:
    """Create run `run_id` (or reopen the one to resume); return its id, release and mirrors."""
    try:
        if job.resume is None:
            if not job.expected:
                raise PublishSetupError(
                    "no release to publish: give --source-tree DIR or --expect daily=N ..."
                )
            mirrors = plan(
                job.inventory, only=job.only, last_duration=order_seconds(store.last_pushes())
            )
            if not mirrors:
                raise PublishSetupError("no active mirror to publish to")
            store.create_run(
                run_id,
                time.time(),
                expected=job.expected,
                request=render_request("sync", run_id, job.expected),
                inventory=job.inventory_path,
                mirrors=[m.name for m in mirrors],
                kind=job.kind,
                heartbeat_stamp=job.heartbeat_stamp,
            )
            return run_id, job.expected, mirrors
        run = store.run(job.resume)
        if run is None:
            raise PublishSetupError(
                f"no run {job.resume!r} in {job.state}: see 'syncd status' for recent runs"
            )
        targets = store.targets(run.run_id)
        pending = [t.mirror for t in targets if t.outcome != PushOutcome.OK.value]
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
            done=[t.mirror for t in targets if t.outcome == PushOutcome.OK.value],
            last_duration=order_seconds(store.last_pushes()),
        )
        store.reopen_run(run.run_id)
        job.kind, job.heartbeat_stamp = (
            run.kind,
            run.heartbeat_stamp,
        )  # a resumed heartbeat proves its stamp
        return run.run_id, run.expected, mirrors
    except (PlanError, RequestError) as err:
        raise PublishSetupError(str(err)) from None


def _recorded_ok(
    store: PublishStore,
    run_id: str,
    inventory: Inventory,
    proving: bool,
    besides: Collection[str] = (),
) -> list[MirrorResult]:
    """The results of the mirrors `run_id` recorded ok, but those in `besides`."""
    out = []
    for t in store.ok_targets(run_id, besides):
        if t.outcome == PushOutcome.OK.value:
            m = inventory.get(t.mirror)
            out.append(
                MirrorResult(
                    t.mirror,
                    PushOutcome.OK,
                    t.attempts,
                    None,
                    t.report,
                    m.host if m else "",
                    m.port if m else 22,
                    tuple(m.admins) if m else (),
                    Proof.HTTP if proving and m and m.http else Proof.UNPROVEN,
                )
            )
    return out


async def publish_main(
    job: PublishJob, progress: Progress | None = None, *, handle_signals: bool = True
) -> RunOutcome:
    """Run one publish (or finish one with ``resume``) end to end; return its outcome.
    Raise PublishSetupError (or StoreError, SshSetupError, RunBusy) when it cannot start."""
    run_id = job.resume or new_run_id(datetime.now(UTC), secrets.token_hex(3))
    async with open_record(job.state, job.record_timeout) as record:
        with hold_run(job.state, run_id):
            return await _publish(job, run_id, record, progress, handle_signals)


async def _publish(
    job: PublishJob,
    run_id: str,
    record: RecordWriter,
    progress: Progress | None,
    handle_signals: bool,
) -> RunOutcome:
    ssh = PinnedSsh(job.key, job.policy)
    transports = {s.name: PinnedSsh(s.key, job.policy) for s in job.sources}
    run_id, expected, mirrors = await record.call(lambda store: _begin(job, run_id, store))
    if job.files_for != expected:
        job.files = ()  # the tree holds another release (moved on, or --expect): no proof
        job.tails = ()
        job.pins = {}  # nor pins: no second wave through hubs
    for transport in (ssh, *transports.values()):
        transport.prepare(mirrors)
    planned: dict[str, Decision] = {}
    hubs = hubs_of(mirrors) if job.pins else []
    if job.sources:
        reports = await record.call(lambda store: store.recent_reports())
        planned = plan_tiers(
            [m.name for m in mirrors],
            [s.spec() for s in job.sources],
            hubs,
            {m.name: m.hubs or [] for m in mirrors},
            rates=measured_rates(reports),
            learn_after=job.policy.source_learn_after,
        )
    raise_nofile_limit(64 + 2 * len(mirrors) + 2 * job.policy.session_concurrency)
    async with (
        open_aio_loop(job.policy.ssh_loop) as aio,
        _http_client(job.policy) as client,
    ):
        for transport in (ssh, *transports.values()):
            transport.aio = aio
        publisher = Publisher(
            ssh,
            record,
            run_id,
            expected,
            job.policy,
            progress or NoProgress(),
            http_prover(client, job.heartbeat_stamp, job.files, job.tails) if client else None,
            handle_signals=handle_signals,
            sources=[s.spec() for s in job.sources],
            transports=dict(transports),
            planned=planned,
            hubs=hubs,
            pins=job.pins,
        )
        fresh = await publisher.run(mirrors)
    fresh_names = {r.name for r in fresh}
    with trio.CancelScope(shield=True):  # the run is closed, even when cancelled now
        try:
            recorded = await record.call(
                lambda store: _recorded_ok(
                    store, run_id, job.inventory, job.policy.http_check, fresh_names
                )
            )
        except StoreError:  # the summary holds this invocation's mirrors only
            recorded = []
        earlier = [r for r in recorded if r.name not in fresh_names]
        failed = record.failure is not None
        state = "cancelled" if publisher.cancelled else "failed" if failed else "finished"
        finished = time.time()
        with contextlib.suppress(StoreError):  # then it stays running, its lock free
            await record.call(
                lambda store: store.finish_run(run_id, finished, state), patience_s=PATIENCE_S
            )
    return RunOutcome(
        run_id, expected, earlier + fresh, publisher.cancelled, _record_error(record, run_id)
    )


def hubs_of(mirrors: Sequence[Mirror]) -> list[SourceSpec]:
    """The hubs among `mirrors` (a ``hub`` table in the inventory), as the scheduler's
    sources of a second wave."""
    return [
        SourceSpec(m.name, m.hub.weight, m.hub.max_transfers) for m in mirrors if m.hub is not None
    ]


def _http_client(
    policy: Policy,
) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient | None]:
    """The HTTP client of the proofs, or None without them (httpx is then not even imported:
    it is start-up time)."""
    if not policy.http_check:
        return contextlib.nullcontext()
    # httpx only with http_check
    from syncd.httpcheck import client as mirrorhttp

    return mirrorhttp.new_client(policy.http_timeout, policy.handshake_concurrency)


def _record_error(record: RecordWriter, run_id: str) -> str | None:
    """The line that says the record is incomplete, and what to do, or None."""
    if record.failure is None:
        return None
    return (
        f"{record.failure} ({record.lost} write(s) to the record lost): the run's record is "
        f"incomplete; fix the cause (free disk space, find what holds the database), then "
        f"'syncd publish --resume {run_id}' pushes to every mirror not recorded ok"
    )
