"""The publish record's one writer: a thread that owns the SQLite connection and runs the jobs
trio hands it, one at a time, in the order they were handed over.

SQLite calls block: a write waits up to the busy timeout (30 s) while another process (a
`syncd monitor` pass, say) holds the write lock. Made from a trio task, that wait would stop
the whole loop and every deadline with it. Here only this thread waits; a task that needs a
job's result awaits it (and can be cancelled meanwhile: the job still runs), a task that does
not (an attempt closed as it is cancelled) only hands it over. Nothing handed over is lost:
`open_record` waits for every job before it closes, and reports a job that failed.
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

from syncd.adapters.publishstore import PublishStore
from syncd.adapters.sqlite import StoreError, open_db

T = TypeVar("T")
Job = Callable[[PublishStore], Any]


class RecordWriter:
    """Jobs on the publish record (`PublishStore` methods), run by one thread, in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._jobs: queue.SimpleQueue[tuple[Job, Future[Any]] | None] = queue.SimpleQueue()
        self._opened: Future[None] = Future()
        self._closed: Future[None] = Future()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="syncd-record", daemon=True)

    # the writer's thread
    def _serve(self) -> None:
        try:
            conn = open_db(self.path)
            store = PublishStore(conn)
        except BaseException as err:  # StoreError, or sqlite3's own: handed to the opener
            self._opened.set_exception(_translated(err, self.path))
            self._closed.set_result(None)
            return
        self._opened.set_result(None)
        try:
            while (item := self._jobs.get()) is not None:
                job, future = item
                try:
                    future.set_result(job(store))
                except BaseException as err:  # handed to whoever waits for this job
                    failure = _translated(err, self.path)
                    self._failure = self._failure or failure
                    future.set_exception(failure)
        finally:
            conn.close()
            if self._failure is not None:
                self._closed.set_exception(self._failure)
            else:
                self._closed.set_result(None)

    # trio's side: never blocks
    def submit(self, job: Callable[[PublishStore], T]) -> Future[T]:
        """Hand `job` over; return its future (see `result`)."""
        future: Future[T] = Future()
        self._jobs.put((job, future))
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

    async def call(self, job: Callable[[PublishStore], T]) -> T:
        """Hand `job` over and wait for its result."""
        return await self.result(self.submit(job))


def _translated(err: BaseException, path: Path) -> BaseException:
    if isinstance(err, sqlite3.Error):
        return StoreError(f"the state database {path}: {err}")
    return err


@contextlib.asynccontextmanager
async def open_record(path: Path) -> AsyncIterator[RecordWriter]:
    """Start the writer of the record at `path` (opened and migrated in its thread); on the
    way out, wait for every job handed over (shielded from cancellation: the record is
    written either way), stop it, and raise the first job that failed as StoreError."""
    writer = RecordWriter(path)
    writer._thread.start()
    try:
        await writer.result(writer._opened)
        yield writer
    finally:
        writer._jobs.put(None)
        with trio.CancelScope(shield=True):
            await writer.result(writer._closed)
