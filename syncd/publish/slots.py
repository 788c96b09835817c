"""A source's (or hub's) transfer slots, handed out in the push order, not first come.

``syncd publish`` plans its pushes slowest first (`syncd.publish.plan`): the slowest mirrors
must get their source's slots before anyone else, or the release ends late. A trio
``CapacityLimiter`` serves its waiters in the order they arrive, and the order in which a
batch of new tasks arrive is trio's (it runs each batch of runnable tasks backwards half the
time). `RankedSlots` gives each free slot to the waiting push with the lowest rank (its place in
the push order), and a push that finds a slot free takes it only after one checkpoint, so every
push started in the same batch is waiting by then and the first slots go to the front of the
order whatever order trio ran them in. No task has to wait for another's start (a chain of
hand-overs costs two scheduler turns per mirror, seconds at 500 mirrors on a loaded machine).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio


@dataclass(order=True)
class _Waiter:
    rank: int
    seq: int
    event: trio.Event = field(compare=False, default_factory=trio.Event)
    granted: bool = field(compare=False, default=False)


class RankedSlots:
    """At most `total_tokens` holders at once; a free slot goes to the lowest-ranked waiter
    (ties in arrival order). `total_tokens` may be lowered while more are borrowed: no new
    slot is given until the borrowed ones are back under it."""

    def __init__(self, total_tokens: int) -> None:
        self._total = total_tokens
        self._borrowed = 0
        self._waiting: list[_Waiter] = []
        self._seq = itertools.count()

    @property
    def total_tokens(self) -> int:
        return self._total

    @total_tokens.setter
    def total_tokens(self, value: int) -> None:
        if value < 1:
            raise ValueError(f"total_tokens must be at least 1, not {value}")
        self._total = value
        self._hand_out()

    @property
    def borrowed_tokens(self) -> int:
        return self._borrowed

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @asynccontextmanager
    async def slot(self, rank: int) -> AsyncIterator[None]:
        """Hold one slot for the block; `rank` is the holder's place in the push order."""
        await self._acquire(rank)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, rank: int) -> None:
        waiter = _Waiter(rank, next(self._seq))
        heapq.heappush(self._waiting, waiter)
        try:
            # one turn first: the others started in this batch join the queue meanwhile
            await trio.lowlevel.checkpoint()
            self._hand_out()
            await waiter.event.wait()
        except BaseException:
            if waiter.granted:
                self._release()  # granted while being cancelled: the slot goes on
            else:
                self._waiting.remove(waiter)
                heapq.heapify(self._waiting)
            raise

    def _release(self) -> None:
        self._borrowed -= 1
        self._hand_out()

    def _hand_out(self) -> None:
        while self._waiting and self._borrowed < self._total:
            waiter = heapq.heappop(self._waiting)
            waiter.granted = True
            self._borrowed += 1
            waiter.event.set()
