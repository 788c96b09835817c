"""The asyncio placement under trio: results, errors, cancellation and late values."""

from __future__ import annotations

import asyncio
import threading

import pytest
import trio

from syncd.publish.aioloop import ThreadLoop, open_aio_loop


async def _double(x: int) -> int:
    await asyncio.sleep(0.01)
    return 2 * x


async def _boom() -> None:
    raise ValueError("from the asyncio side")


def test_results_errors_and_the_thread() -> None:
    async def main() -> None:
        async with open_aio_loop("thread") as aio:
            assert await aio.call(_double, 21) == 42
            with pytest.raises(ValueError, match="from the asyncio side"):
                await aio.call(_boom)
            assert [t.name for t in threading.enumerate()].count("syncd-asyncio") == 1

    trio.run(main)
    assert "syncd-asyncio" not in [t.name for t in threading.enumerate()]


def test_cancellation_reaches_the_asyncio_task() -> None:
    seen: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def main() -> None:
        async with open_aio_loop("thread") as aio:
            with trio.move_on_after(0.2):
                await aio.call(slow)

    trio.run(main)
    assert seen == ["cancelled"]


def test_a_value_that_arrives_after_the_deadline_is_disposed_of() -> None:
    disposed: list[str] = []

    async def stubborn() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            return "connection"  # e.g. a connect that completed as the deadline hit
        return "never"

    async def dispose(value: str) -> None:
        disposed.append(value)

    async def main() -> None:
        async with open_aio_loop("thread") as aio:
            with trio.move_on_after(0.2):
                await aio.call(stubborn, orphan=dispose)
            await trio.sleep(0.2)

    trio.run(main)
    assert disposed == ["connection"]


def test_stop_cancels_what_still_runs() -> None:
    loop = ThreadLoop()
    loop.start()
    fut = asyncio.run_coroutine_threadsafe(asyncio.sleep(30), loop.loop)
    loop.stop()
    assert fut.cancelled()
    assert loop.loop.is_closed()
