"""The record has one writer, off the trio loop: a `syncd monitor` (or anyone) holding the
SQLite write lock during a publish delays the record, never a deadline, and loses no write."""

from __future__ import annotations

import functools
import sqlite3
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import trio

from devtools.harness.cvd import DEFAULT_VERSIONS
from devtools.harness.documents import LAB_INVENTORY
from devtools.harness.sshkeys import KeyPair
from syncd.inventory.model import parse_inventory
from syncd.publish.classify import Judgement
from syncd.publish.config import Policy
from syncd.publish.job import PublishJob, publish_main
from syncd.publish.recordwriter import RecordWriter, open_record
from syncd.publish.store import PublishStore
from syncd.publish.summary import MirrorResult
from syncd.sqlite import StoreError, open_db
from tests.publish.fakes import FakeMirror, MirrorFactory

HOLD_S = 6.0  # longer than the command timeout, shorter than SQLite's busy timeout (30 s)


class Times:
    """When each mirror's attempts were judged and its push finished (monotonic clock)."""

    def __init__(self) -> None:
        self.judged: dict[str, float] = {}
        self.done: dict[str, float] = {}

    def start(self, total: int) -> None:
        pass

    def attempt(self, mirror: str, verb: str, number: int, judgement: Judgement) -> None:
        self.judged[mirror] = time.monotonic()

    def finished(self, result: MirrorResult) -> None:
        self.done[result.name] = time.monotonic()


def hold_write_lock(db: Path, mirrors: list[FakeMirror], held: dict[str, float]) -> None:
    """Once every mirror has its request, take the write lock (as a monitor pass's
    transaction does) and keep it for HOLD_S seconds."""
    deadline = time.monotonic() + 20
    while not all(m.requests for m in mirrors) and time.monotonic() < deadline:
        time.sleep(0.02)
    conn = sqlite3.connect(str(db), isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    held["from"] = time.monotonic()
    time.sleep(HOLD_S)
    held["until"] = time.monotonic()
    conn.execute("COMMIT")
    conn.close()


def test_a_held_write_lock_stalls_no_deadline_and_loses_no_write(
    tmp_path: Path, fake_mirror: MirrorFactory, keypair: KeyPair
) -> None:
    slow = [fake_mirror(f"slow{i}.test", "slow") for i in (1, 2)]  # answer after 3 s
    hang = fake_mirror("hang.test", "hang")  # never answers: the command timeout must fire
    fleet = [*slow, hang]
    db = tmp_path / "state.sqlite"
    PublishStore(open_db(db)).conn.close()  # the record exists, as it does between runs
    job = PublishJob(
        key=keypair.private,
        state=db,
        inventory=parse_inventory(LAB_INVENTORY + "".join(m.inventory_block() for m in fleet)),
        inventory_path="inventory.toml",
        policy=Policy(
            connect_timeout=3,
            login_timeout=3,
            command_timeout=4,
            run_timeout=40,
            max_attempts=1,
            http_check=False,
        ),
        expected=dict(DEFAULT_VERSIONS),
    )
    times, held = Times(), {}
    locker = threading.Thread(target=hold_write_lock, args=(db, fleet, held))
    locker.start()
    started = time.monotonic()
    outcome = trio.run(functools.partial(publish_main, job, times, handle_signals=False))
    locker.join()

    # the hanging mirror's command timeout fired on time, while the lock was held ...
    assert held["from"] < times.judged["hang.test"] < held["until"], (times.judged, held)
    assert times.judged["hang.test"] - started < 4 + 3
    # ... and every result waited for its write: the run completed after the lock went
    assert min(times.done.values()) >= held["until"]
    assert {r.name: r.outcome.value for r in outcome.results} == {
        "slow1.test": "ok",
        "slow2.test": "ok",
        "hang.test": "timeout",
    }
    # no write lost: every attempt closed, every outcome and current state recorded
    store = PublishStore(open_db(db))
    attempts = store.attempts(outcome.run_id)
    assert len(attempts) == 3 and all(a["finished_at"] is not None for a in attempts)
    assert {a["mirror"]: a["verdict"] for a in attempts} == {
        "slow1.test": "ok",
        "slow2.test": "ok",
        "hang.test": "fail",
    }
    assert {t.mirror: t.outcome for t in store.targets(outcome.run_id)} == {
        "slow1.test": "ok",
        "slow2.test": "ok",
        "hang.test": "timeout",
    }
    assert {s.mirror for s in store.mirror_states()} == {m.name for m in fleet}
    assert store.run(outcome.run_id).state == "finished"  # type: ignore[union-attr]


def test_writes_queued_together_are_committed_together_and_told_done_only_then(
    tmp_path: Path,
) -> None:
    """Group commit: the jobs that queued up while the writer was busy run in one
    transaction; each one's future is resolved after that transaction is committed (another
    connection sees its write by then), and a job that fails loses its own write only."""
    db = tmp_path / "state.sqlite"
    names = [f"m{i}" for i in range(20)]
    gate = threading.Event()
    seen: dict[str, int] = {}  # what another connection saw as each write was told done

    def look(name: str, _: object) -> None:
        conn = sqlite3.connect(str(db))
        try:
            seen[name] = conn.execute(
                "SELECT attempts FROM publish_targets WHERE run_id = 'R' AND mirror = ?", (name,)
            ).fetchone()[0]
        finally:
            conn.close()

    async def main() -> tuple[RecordWriter, list[Start], list[Start], Future[None], int]:
        async with open_record(db) as record:
            await record.call(
                lambda s: s.create_run(
                    "R", 0.0, expected={}, request="sync", inventory=None, mirrors=names
                )
            )
            record.submit(lambda s: gate.wait(10))  # busy: what follows queues up
            starts = []
            for name in names:
                f = record.submit(functools.partial(_start, name=name))
                f.add_done_callback(functools.partial(look, name))
                starts.append(f)
            gate.set()
            for f in starts:
                await record.result(f)
            commits = record.commits
            # a batch with a failing write: rolled back, its jobs run again one by one
            again = threading.Event()
            record.submit(lambda s: again.wait(10))
            more = [record.submit(functools.partial(_start, name=n)) for n in names[:3]]
            bad = record.submit(lambda s: s.conn.execute("INSERT INTO nowhere VALUES (1)"))
            more += [record.submit(functools.partial(_start, name=n)) for n in names[3:6]]
            again.set()
            for f in more:
                await record.result(f)
        return record, starts, more, bad, commits

    record, starts, more, bad, commits = trio.run(main)
    assert commits >= 1  # at least one batch of several jobs, one commit
    assert [f.result()[1] for f in starts] == [1] * len(names)
    assert seen == dict.fromkeys(names, 1)  # committed before each was told done
    assert isinstance(bad.exception(), StoreError) and record.lost == 1
    assert [f.result()[1] for f in more] == [2] * 6  # each written once, none lost
    store = PublishStore(open_db(db))
    want = {n: 2 if i < 6 else 1 for i, n in enumerate(names)}
    assert {t.mirror: t.attempts for t in store.targets("R")} == want
    assert len(store.attempts("R")) == len(names) + 6


Start = Future[tuple[int, int]]


def _start(store: PublishStore, name: str) -> tuple[int, int]:
    return store.start_attempt("R", name, "sync", 1.0)
