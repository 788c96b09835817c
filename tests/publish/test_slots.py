"""RankedSlots: a source's transfer slots go to the lowest rank waiting, whatever order trio
runs a batch of new tasks in; never more holders than slots; a cancelled waiter or holder
gives its place on."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.publish.slots import RankedSlots


class _Coin(random.Random):
    """trio's scheduler coin, fixed: every batch of runnable tasks reversed, or never."""

    def __init__(self, reverse: bool) -> None:
        super().__init__(0)
        self.reverse = reverse

    def random(self) -> float:
        return 0.0 if self.reverse else 0.9


class _Checked(RankedSlots):
    """RankedSlots that checks its promise at every hand-out: what it grants ranks no lower
    than anything it leaves waiting, and never more holders than slots."""

    def _hand_out(self) -> None:
        lowered = self.borrowed_tokens > self.total_tokens
        before = {id(w): w for w in self._waiting}
        super()._hand_out()
        granted = [w.rank for k, w in before.items() if k not in {id(x) for x in self._waiting}]
        left = [w.rank for w in self._waiting]
        assert not granted or not left or max(granted) <= min(left), (granted, left)
        assert lowered or self.borrowed_tokens <= self.total_tokens


class _Watch:
    """Who got a slot, in order, and the most holders at once."""

    def __init__(self, slots: RankedSlots) -> None:
        self.slots = slots
        self.order: list[int] = []
        self.most = 0
        self.holding = 0

    async def hold(self, rank: int, seconds: float) -> None:
        async with self.slots.slot(rank):
            self.holding += 1
            self.order.append(rank)
            self.most = max(self.most, self.holding)
            await trio.sleep(seconds)
            self.holding -= 1


@pytest.mark.parametrize("reverse", [True, False])
def test_the_first_slots_go_to_the_front_of_the_order_when_trio_runs_the_batch_backwards(
    monkeypatch: pytest.MonkeyPatch, reverse: bool
) -> None:
    monkeypatch.setattr(trio._core._run, "_r", _Coin(reverse))

    async def main() -> list[int]:
        watch = _Watch(_Checked(3))
        async with trio.open_nursery() as nursery:
            for rank in reversed(range(12)) if reverse else range(12):
                nursery.start_soon(watch.hold, rank, 1.0)
        assert watch.most == 3
        return watch.order

    order = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    # three at a time, each three the next in the order (among them, trio's order)
    assert [sorted(order[i : i + 3]) for i in range(0, 12, 3)] == [
        list(range(i, i + 3)) for i in range(0, 12, 3)
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    total=st.integers(1, 5),
    pushes=st.lists(
        st.tuples(st.integers(0, 30), st.floats(0, 5), st.floats(0, 5)), min_size=1, max_size=25
    ),
    reverse=st.booleans(),
)
def test_never_more_holders_than_slots_and_always_the_lowest_rank_waiting(
    total: int, pushes: list[tuple[int, float, float]], reverse: bool
) -> None:
    """Pushes arrive at any times with any ranks (ties included) and hold for any time:
    each grant goes to the lowest rank then waiting, the holders never exceed the slots,
    everyone gets one, and the slots are all back at the end."""
    trio._core._run._r = _Coin(reverse)  # type: ignore[attr-defined]
    try:

        async def main() -> None:
            slots = _Checked(total)
            watch = _Watch(slots)

            async def push(rank: int, after: float, hold: float) -> None:
                await trio.sleep(after)
                await watch.hold(rank, hold)

            async with trio.open_nursery() as nursery:
                for rank, after, hold in pushes:
                    nursery.start_soon(push, rank, after, hold)
            assert sorted(watch.order) == sorted(r for r, _, _ in pushes)
            assert watch.most <= total
            assert slots.borrowed_tokens == 0 and slots.waiting == 0

        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    finally:
        trio._core._run._r = random.Random()  # type: ignore[attr-defined]


def test_a_cancelled_waiter_leaves_the_queue_and_a_cancelled_holder_gives_its_slot_on() -> None:
    async def main() -> None:
        slots = RankedSlots(1)
        got: list[str] = []

        async def take(name: str, rank: int, hold: float) -> None:
            async with slots.slot(rank):
                got.append(name)
                await trio.sleep(hold)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(take, "holder", 0, 10.0)
            await trio.sleep(1)
            with trio.CancelScope() as waiting:
                waiting.cancel()  # cancelled before it is ever granted
                await take("never", 1, 1.0)
            assert slots.waiting == 0
            with trio.move_on_after(2):  # cancelled while it waits
                await take("late", 2, 100.0)
            assert slots.waiting == 0
            await trio.sleep(10)  # the holder has left
            with trio.move_on_after(2):  # a holder cancelled mid-hold
                await take("brief", 4, 100.0)
            assert slots.borrowed_tokens == 0
            nursery.start_soon(take, "next", 5, 1.0)
        assert got == ["holder", "brief", "next"]
        assert slots.borrowed_tokens == 0 and slots.waiting == 0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_fewer_slots_take_effect_as_holders_leave_and_more_at_once() -> None:
    async def main() -> None:
        slots = _Checked(3)
        watch = _Watch(slots)
        async with trio.open_nursery() as nursery:
            for rank in range(3):
                nursery.start_soon(watch.hold, rank, 10.0)
            await trio.sleep(1)
            slots.total_tokens = 1  # a busy answer: fewer at once
            for rank in range(3, 6):
                nursery.start_soon(watch.hold, rank, 10.0)
            await trio.sleep(10.5)  # the first three have left; only one more holds
            assert slots.borrowed_tokens == 1
            slots.total_tokens = 3
            assert slots.borrowed_tokens == 3
        order = watch.order  # those granted together resume in trio's order
        assert (sorted(order[:3]), order[3], sorted(order[4:])) == ([0, 1, 2], 3, [4, 5])
        with pytest.raises(ValueError, match="at least 1"):
            slots.total_tokens = 0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_push_granted_its_slot_as_it_is_cancelled_gives_the_slot_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Granted during its first turn (another task hands slots out) and cancelled in the same
    turn: the slot it never used goes to the next push, none is lost."""
    # trio runs a batch from its end, reversed half the time: always reversed, in start order
    monkeypatch.setattr(trio._core._run, "_r", _Coin(True))

    async def main() -> None:
        slots = RankedSlots(1)
        got: list[str] = []

        async def take(name: str, scope: trio.CancelScope) -> None:
            with scope:
                async with slots.slot(0):
                    got.append(name)

        async def hand_out_and_cancel(scope: trio.CancelScope) -> None:
            slots.total_tokens = 1  # hands the free slot to the push waiting in its turn
            assert slots.borrowed_tokens == 1
            scope.cancel()

        async with trio.open_nursery() as nursery:
            first = trio.CancelScope()
            nursery.start_soon(take, "first", first)
            nursery.start_soon(hand_out_and_cancel, first)
        assert got == [] and slots.borrowed_tokens == 0
        async with slots.slot(1):
            got.append("next")
        assert got == ["next"]

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
