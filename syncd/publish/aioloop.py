"""Where asyncssh's asyncio code runs while trio orchestrates. Two placements, one interface:

- ``thread`` (the default): a plain asyncio loop in one worker thread. trio hands each call
  over with ``call_soon_threadsafe`` and sleeps until the task's done callback wakes it
  through its trio token. Measured in ``benchmarks/bridge.py``: 1.16x the CPU of asyncssh
  on plain asyncio.
- ``trio-asyncio``: trio_asyncio's loop inside trio's, crossed with ``aio_as_trio``. 2.0x the
  CPU of plain asyncio, spent in the two schedulers' bookkeeping (about 83 turns of its main
  loop per connection). Kept for comparison and as a fallback (``[policy] ssh_loop``).

Both honour trio cancellation: a cancelled call cancels its asyncio task, so nothing keeps
running behind syncd's back; a value that arrives anyway (a connection completed as the
deadline hit) is handed to `orphan` on the loop, to be closed there.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import CancelledError
from typing import Any, Protocol, TypeVar

import trio

T = TypeVar("T")
SETTLE_S = 2.0


class AioLoop(Protocol):
    async def call(
        self,
        fn: Callable[..., Awaitable[T]],
        *args: Any,
        orphan: Callable[[T], Awaitable[None]] | None = None,
    ) -> T: ...


class ThreadLoop:
    """A plain asyncio loop in a worker thread, called from trio."""

    def __init__(self) -> None:
        self.loop = asyncio.SelectorEventLoop()  # explicit: trio_asyncio may own the policy
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="syncd-asyncio", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Cancel what still runs on the loop, stop it, join the thread, close the loop."""
        if not self._thread.is_alive():
            return

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(SETTLE_S * 2)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(SETTLE_S * 2)
        if not self._thread.is_alive():
            self.loop.close()

    async def call(
        self,
        fn: Callable[..., Awaitable[T]],
        *args: Any,
        orphan: Callable[[T], Awaitable[None]] | None = None,
    ) -> T:
        """Run `fn(*args)` as a task on the loop; wait for it without blocking trio. Handed
        over and back with a callback each way (no concurrent.futures.Future: its lock,
        taken by both threads at once on every call, cost more than the call itself)."""
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        abandoned = threading.Event()
        started: list[asyncio.Task[T]] = []  # the task, once the loop has made it

        def wake(_: asyncio.Task[T]) -> None:  # on the loop
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(done.set)

        async def job() -> T:
            value = await fn(*args)
            if abandoned.is_set() and orphan is not None:
                await orphan(value)  # nobody waits for it any more: dispose of it here
            return value

        def begin() -> None:  # on the loop
            task = self.loop.create_task(job())
            started.append(task)
            task.add_done_callback(wake)

        def cancel() -> None:  # on the loop, after `begin` (its callbacks run in order)
            started[0].cancel()

        self.loop.call_soon_threadsafe(begin)
        try:
            await done.wait()
        except trio.Cancelled:
            abandoned.set()
            self.loop.call_soon_threadsafe(cancel)
            with trio.move_on_after(SETTLE_S) as settle:
                settle.shield = True
                await done.wait()
            raise
        task = started[0]
        if task.cancelled():  # by the loop's stop: an error, as run_coroutine_threadsafe gave
            raise CancelledError(f"{getattr(fn, '__name__', fn)}: cancelled on the asyncio loop")
        return task.result()


class TrioAsyncioLoop:
    """trio_asyncio's loop (the caller must be inside ``trio_asyncio.open_loop()``)."""

    async def call(
        self,
        fn: Callable[..., Awaitable[T]],
        *args: Any,
        orphan: Callable[[T], Awaitable[None]] | None = None,
    ) -> T:
        # imported here: importing trio_asyncio patches asyncio process-wide
        from trio_asyncio import aio_as_trio

        result: T = await aio_as_trio(fn)(*args)
        return result


@contextlib.asynccontextmanager
async def open_aio_loop(kind: str) -> AsyncIterator[AioLoop]:
    """Open the asyncio placement named `kind` ("thread" or "trio-asyncio") for a publish."""
    if kind == "trio-asyncio":
        # imported here: importing trio_asyncio patches asyncio process-wide
        import trio_asyncio

        async with trio_asyncio.open_loop():
            yield TrioAsyncioLoop()
        return
    loop = ThreadLoop()
    loop.start()
    try:
        yield loop
    finally:
        loop.stop()
