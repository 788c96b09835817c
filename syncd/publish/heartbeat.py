"""One ``syncd heartbeat``: move the source tree's ``timestamp`` on to now, push it to every
active mirror as a normal recorded run (kind ``heartbeat``, the same release, proved over HTTP
down to the timestamp), then move the ``current.cvd`` TXT record's time on without touching
its versions."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from syncd.dns.config import DnsConfig
from syncd.dns.plan import TXT_NAME, Change, refreshed_txt
from syncd.dns.server import DnsUpdateError, read_held, send_update
from syncd.dns.store import DnsStore, dns_lock
from syncd.dns.update import current_txt, retrying, server_of
from syncd.errors import SyncdError
from syncd.files import read_stamp_file, write_stamp_file
from syncd.publish.fanout import Progress
from syncd.publish.job import PublishJob, RunOutcome, publish_main
from syncd.publish.stamp import MAX_STAMP_BYTES, next_stamp, parse_stamp
from syncd.sqlite import open_db


@dataclass(frozen=True)
class TxtRefresh:
    """What the heartbeat did to the TXT record: `value` is what it sent (None: nothing)."""

    previous: str | None
    value: str | None
    sent: bool
    note: str
    error: str | None = None


@dataclass(frozen=True)
class HeartbeatOutcome:
    stamp: int
    publish: RunOutcome


def stamp_tree(tree: Path, now: float) -> int:
    """Move ``<tree>/timestamp`` on to `now`; return the stamp written. Raise HeartbeatError
    (it would go backwards, or the file is not a timestamp) or ConfigError (cannot write)."""
    raw = read_stamp_file(tree, MAX_STAMP_BYTES)
    stamp = next_stamp(None if raw is None else parse_stamp(raw), now)
    write_stamp_file(tree, stamp)
    return stamp


async def heartbeat_main(
    job: PublishJob, tree: Path, now: float, progress: Progress | None = None
) -> HeartbeatOutcome:
    """Stamp `tree` at `now`, then push it with `job` (its release read from `tree` by the
    caller); return the stamp and the run's outcome. Raises what stamp_tree and publish_main
    raise, the stamp before anything is pushed."""
    stamp = stamp_tree(tree, now)
    job.kind, job.heartbeat_stamp = "heartbeat", stamp
    return HeartbeatOutcome(stamp, await publish_main(job, progress))


def refresh_txt(
    dns: DnsConfig, *, state: Path, source: dict[str, int], now: float, dry_run: bool
) -> TxtRefresh:
    """Move the TXT record's time on to `now`, its versions untouched; record the change.

    Nothing is sent when the zone has no record yet (the first publish announces one). It is
    refused (said in the result, never raised: the push is done whatever DNS does) when the
    time would go backwards, when `source` (the tree's versions) no longer backs what the
    record announces, or when the server cannot be read."""
    try:
        return _refresh_txt(dns, state=state, source=source, now=now, dry_run=dry_run)
    except SyncdError as err:  # DnsSafetyError, DnsUpdateError, ConfigError, StoreError
        return TxtRefresh(None, None, False, "refused", str(err))


def _refresh_txt(
    dns: DnsConfig, *, state: Path, source: dict[str, int], now: float, dry_run: bool
) -> TxtRefresh:
    server = server_of(dns)
    held_by: contextlib.AbstractContextManager[None] = (
        contextlib.nullcontext() if dry_run else dns_lock(state)
    )
    with held_by:  # one DNS updater at a time: the TXT read stays true until it is replaced
        held = read_held(server, [(TXT_NAME, "TXT")])[(TXT_NAME, "TXT")]
        current = current_txt(held)
        if current is None:
            return TxtRefresh(
                None, None, False, "no TXT record yet: the first publish announces one"
            )
        was = held.values[0]
        new = refreshed_txt(current, now, source)
        value = f'"{new.render()}"'
        if value == was:
            return TxtRefresh(was, None, False, "the record's time is already now")
        if dry_run:
            return TxtRefresh(was, value, False, "dry run: not sent")
        change = Change(
            TXT_NAME, "TXT", (value,), held.values, "heartbeat: record time refreshed", ttl=dns.ttl
        )
        conn = open_db(state)
        try:
            store = DnsStore(conn)
            ids = store.record(now, [change], "sending")
            try:
                for attempt in retrying():
                    with attempt:
                        send_update(server, [change])
            except DnsUpdateError as err:
                store.set_outcome(ids, f"failed: {err}")
                return TxtRefresh(was, value, False, "not sent", str(err))
            store.set_outcome(ids, "sent")
        finally:
            conn.close()
    return TxtRefresh(was, value, True, "record time refreshed, versions unchanged")
