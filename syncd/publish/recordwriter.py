"""The publish record's one writer: a thread that owns the SQLite connection and runs the jobs
trio hands it, one at a time, in the order they were handed over.

SQLite calls block: a write waits up to the busy timeout (30 s) while another process (a
`syncd monitor` pass, say) holds the write lock. Made from a trio task, that wait would stop
the whole loop and every deadline with it. Here only this thread waits; a task that needs a
job's result awaits it (and can be cancelled meanwhile: the job still runs), a task that does
not (an attempt closed as it is cancelled) only hands it over. Nothing handed over is lost:
`open_record` waits for every job before it closes.

A write can fail (a full disk: SQLITE_FULL; ``database is locked`` after the busy timeout).
The job's future then holds a StoreError, the writer keeps the first one (`failure`) and
counts them (`lost`), and it serves the jobs that follow: each is tried, since a lock may be
released and a disk freed, but without waiting for a lock (a record already incomplete must
not hold the run for a busy timeout per write), except a job handed over with a `patience_s`
of its own (the run's last write). Whoever runs the writer decides what a
failure means (``syncd publish`` ends the run failed, its JSON says so).

Group commit: the jobs that queued up while the writer was busy (a fan-out's attempts end
by the hundred at once) run in one transaction, and their futures are resolved only once it
is committed. So a job's result, seen by its caller, is durable as before (a SIGKILL loses
only jobs nobody was told were done: ``syncd publish --resume`` pushes again to every mirror
whose end was not yet reported), at one commit per batch instead of one per write. A batch
that fails in any job (or in its commit) is rolled back whole and its jobs are run again one
by one, each in its own transaction: a failure loses that write only, as without batching.
Once a write has failed, jobs run one by one.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import trio

from syncd.publish.store import PublishStore
from syncd.sqlite import StoreError, open_db
from syncd.text import clean
from syncd.traffic.store import TrafficStore

T = TypeVar("T")
Job = Callable[[PublishStore], Any]
BUSY_TIMEOUT_S = 30.0  # how long a write waits for another process's write lock
PATIENCE_S = 2.0  # how long the run's last write waits once a write has failed
MAX_BATCH = 512  # jobs committed together at most (a batch holds the write lock meanwhile)
Item = tuple[Job, Future[Any], float | None]  # a job, its future, its patience


class RecordWriter:
    """Jobs on the publish record (`PublishStore` methods), run by one thread, in order."""

    def __init__(self, path: Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self.lost = 0  # jobs that failed
        self._jobs: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self.commits = 0  # batches of more than one job committed (for tests and benchmarks)
        self._opened: Future[None] = Future()
        self._closed: Future[None] = Future()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="syncd-record", daemon=True)

    # the writer's thread
    def _serve(self) -> None:
        try:
            conn = open_db(self.path, timeout=self.busy_timeout_s)
            store = PublishStore(conn)
            TrafficStore(conn)  # migrated here: its rows are written in the batches
        except BaseException as err:  # StoreError, or sqlite3's own: handed to the opener
            self._opened.set_exception(_translated(err, self.path))
            self._closed.set_result(None)
            return
        self._opened.set_result(None)
        try:
            while (item := self._jobs.get()) is not None:
                batch, stop = self._drain(item)
                if len(batch) > 1 and self._failure is None:
                    self._run_batch(conn, store, batch)
                else:
                    for one in batch:
                        self._run_one(conn, store, one)
                if stop:
                    break
        finally:
            conn.close()
            self._closed.set_result(None)

    def _drain(self, first: Item) -> tuple[list[Item], bool]:
        """`first` and the jobs queued behind it (up to MAX_BATCH); and whether the writer
        was told to stop after them."""
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                item = self._jobs.get_nowait()
            except queue.Empty:
                return batch, False
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _run_one(self, conn: sqlite3.Connection, store: PublishStore, item: Item) -> None:
        """One job in its own transaction(s), its future resolved at once."""
        job, future, patience_s = item
        try:
            if patience_s is not None and self._failure is not None:
                _wait_for_locks(conn, patience_s)
            future.set_result(job(store))
        except BaseException as err:  # handed to whoever waits for this job
            self._fail(future, err)
        if self._failure is not None:
            _degrade(conn)

    def _run_batch(self, conn: sqlite3.Connection, store: PublishStore, batch: list[Item]) -> None:
        """`batch` in one transaction; each future resolved once it is committed. When the
        write lock cannot be had, the first job fails as it would alone (the others follow
        one by one, without waiting); when a job or the commit fails, all is rolled back and
        each job runs again alone."""
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            self._fail(batch[0][1], err)
            _degrade(conn)
            for item in batch[1:]:
                self._run_one(conn, store, item)
            return
        values: list[Any] = []
        try:
            for job, _, _ in batch:
                values.append(job(store))
            conn.execute("COMMIT")
        except BaseException:  # run again one by one: the failure is that job's alone
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            for item in batch:
                self._run_one(conn, store, item)
            return
        self.commits += 1
        for (_, future, _), value in zip(batch, values, strict=True):
            future.set_result(value)

    def _fail(self, future: Future[Any], err: BaseException) -> None:
        failure = _translated(err, self.path)
        self.lost += 1
        self._failure = self._failure or failure
        future.set_exception(failure)

    @property
    def failure(self) -> BaseException | None:
        """The first job that failed (a StoreError for SQLite's errors), or None."""
        return self._failure

    # trio's side: never blocks
    def submit(
        self, job: Callable[[PublishStore], T], patience_s: float | None = None
    ) -> Future[T]:
        """Hand `job` over; return its future (see `result`). Once a job has failed, `job`
        waits up to `patience_s` for another process's lock (given), else not at all."""
        future: Future[T] = Future()
        self._jobs.put((job, future, patience_s))
        return future

    async def result(self, future: Future[T]) -> T:
        """Wait for a job's result (or its StoreError) without blocking the trio loop."""
        if not future.done():
            token = trio.lowlevel.current_trio_token()
            done = trio.Event()

            def wake(_: Future[T]) -> None:
                with contextlib.suppress(trio.RunFinishedError):
                    token.run_sync_soon(done.set)

            future.add_done_callback(wake)
            await done.wait()
        return future.result()

    async def call(self, job: Callable[[PublishStore], T], patience_s: float | None = None) -> T:
        """Hand `job` over and wait for its result."""
        return await self.result(self.submit(job, patience_s))


# What sqlite3 raises besides its own errors when a value cannot be bound: a string no UTF-8
# can carry (a lone surrogate), an integer past 64 bits.
_STORE_ERRORS = (sqlite3.Error, UnicodeError, OverflowError)


def _translated(err: BaseException, path: Path) -> BaseException:
    """SQLite's errors, and a value it could not store, as StoreError (that write lost); any
    other exception as it is, for the failure boundary of whoever handed the job over."""
    if isinstance(err, _STORE_ERRORS):
        what = "" if isinstance(err, sqlite3.Error) else f"{type(err).__name__}: "
        return StoreError(f"the state database {path}: {what}{clean(str(err), 300)}")
    return err


def _degrade(conn: sqlite3.Connection) -> None:
    """After a failure: nothing left half done, and no more waiting for locks."""
    _wait_for_locks(conn, 0.0)


def _wait_for_locks(conn: sqlite3.Connection, seconds: float) -> None:
    with contextlib.suppress(sqlite3.Error):
        if conn.in_transaction:
            conn.rollback()
        conn.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")


@contextlib.asynccontextmanager
async def open_record(
    path: Path, busy_timeout_s: float = BUSY_TIMEOUT_S
) -> AsyncIterator[RecordWriter]:
    """Start the writer of the record at `path` (opened and migrated in its thread; raise
    StoreError when it cannot be); on the way out, wait for every job handed over (shielded
    from cancellation: the record is written either way) and stop it. Jobs that failed are
    the caller's to look at (`RecordWriter.failure`)."""
    writer = RecordWriter(path, busy_timeout_s)
    writer._thread.start()
    try:
        await writer.result(writer._opened)
        yield writer
    finally:
        writer._jobs.put(None)
        with trio.CancelScope(shield=True):
            await writer.result(writer._closed)
