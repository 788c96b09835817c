"""Publisher timing under trio's mock clock (autojump): backoff schedules, deadlines, queued
polling and the record, in zero wall time, with a scripted transport instead of ssh."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
import trio

from devtools.harness.documents import report
from syncd.inventory.model import Mirror
from syncd.publish.config import Policy
from syncd.publish.errors import ConnectionDropped, HostKeyMismatch, PushError, Unreachable
from syncd.publish.fanout import Publisher
from syncd.publish.outcome import PushOutcome
from syncd.publish.ssh import Reply
from syncd.publish.store import PublishStore
from syncd.sqlite import open_db

T = TypeVar("T")
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE4g3v7tDPFq4GeL5Gm5cBVJzvL7xiqsC6kdjrC6Ldqp"
EXPECTED = {"daily": 28033, "main": 62, "bytecode": 335}
OK = Reply(0, report().encode(), b"")
QUEUED = Reply(0, report("queued", {"daily": 1}).encode(), b"")
HANG = "hang"
Step = PushError | Reply | str


def mirror(name: str) -> Mirror:
    return Mirror(name=name, host="127.0.0.1", country="PL", host_keys=[KEY])


@dataclass
class Scripted:
    """Per mirror, a list of steps: a PushError raised by open, a Reply from run, or HANG."""

    steps: dict[str, list[Step]]
    opens: dict[str, list[float]] = field(default_factory=dict)
    requests: dict[str, list[str]] = field(default_factory=dict)
    open_now: int = 0
    max_open: int = 0

    async def open(self, m: Mirror) -> Any:
        self.opens.setdefault(m.name, []).append(trio.current_time())
        await trio.sleep(0.01)
        step = self.steps[m.name][0]
        if isinstance(step, PushError):
            self.steps[m.name].pop(0)
            raise step
        self.open_now += 1
        self.max_open = max(self.max_open, self.open_now)
        return m

    async def run(self, session: Any, request: str) -> Reply:
        self.requests.setdefault(session.name, []).append(request)
        steps = self.steps[session.name]
        step = steps.pop(0) if len(steps) > 1 else steps[0]
        if step == HANG:
            await trio.sleep_forever()
        assert isinstance(step, Reply)
        await trio.sleep(1)
        return step

    async def close(self, session: Any) -> None:
        self.open_now -= 1


@pytest.fixture
def store() -> Iterator[PublishStore]:
    conn = open_db(":memory:")
    yield PublishStore(conn)
    conn.close()


@pytest.fixture
def upper_bound_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Full jitter drawn at its upper bound, so the schedule is exact."""
    monkeypatch.setattr(random, "uniform", lambda low, high: high)


class InlineRecord:
    """The record written on the caller's thread, at once: under trio's mock clock, a task
    waiting for a thread would let the clock jump to the next deadline."""

    def __init__(self, store: PublishStore) -> None:
        self.store = store

    def submit(self, job: Callable[[PublishStore], T]) -> Future[T]:
        future: Future[T] = Future()
        future.set_result(job(self.store))
        return future

    async def result(self, future: Future[T]) -> T:
        return future.result()


def publisher(
    store: PublishStore, transport: Scripted, names: list[str], **policy: Any
) -> Publisher:
    store.create_run("R", 0.0, expected=EXPECTED, request="sync", inventory=None, mirrors=names)
    return Publisher(
        transport, InlineRecord(store), "R", EXPECTED, Policy(**policy), handle_signals=False
    )


@pytest.mark.trio
@pytest.mark.usefixtures("upper_bound_jitter")
async def test_backoff_is_exponential_and_capped(
    autojump_clock: trio.testing.MockClock, store: PublishStore
) -> None:
    t = Scripted({"m": [ConnectionDropped("lost")] * 5 + [OK]})
    p = publisher(store, t, ["m"], backoff_initial=2, backoff_max=10, max_attempts=10)
    (result,) = await p.run([mirror("m")])
    assert result.outcome is PushOutcome.OK and result.attempts == 6
    opens = t.opens["m"]
    gaps = [round(b - a - 0.01, 6) for a, b in itertools.pairwise(opens)]
    assert gaps == [2, 4, 8, 10, 10]
    rows = store.attempts("R", "m")
    assert [r["verdict"] for r in rows] == ["retry"] * 5 + ["ok"]


@pytest.mark.trio
async def test_full_jitter_stays_within_bounds(
    autojump_clock: trio.testing.MockClock, store: PublishStore
) -> None:
    random.seed(4)
    t = Scripted({"m": [Unreachable("refused")] * 20 + [OK]})
    p = publisher(store, t, ["m"], backoff_initial=1, backoff_max=8, max_attempts=30)
    await p.run([mirror("m")])
    opens = t.opens["m"]
    gaps = [b - a - 0.01 for a, b in itertools.pairwise(opens)]
    for n, gap in enumerate(gaps):
        assert 0 <= gap <= min(8, 2**n) + 1e-9
    assert len(set(gaps)) == len(gaps)  # jittered, not a fixed schedule


@pytest.mark.trio
@pytest.mark.usefixtures("upper_bound_jitter")
async def test_retries_stop_before_the_run_deadline(
    autojump_clock: trio.testing.MockClock, store: PublishStore
) -> None:
    t = Scripted({"m": [Unreachable("connection refused")] * 100})
    p = publisher(
        store, t, ["m"], backoff_initial=4, backoff_max=60, max_attempts=100, run_timeout=30
    )
    start = trio.current_time()
    (result,) = await p.run([mirror("m")])
    # attempts at 0, 4, 12, 28; the next would start at 28 + 32 >= 30: stop instead
    assert [round(x - start) for x in t.opens["m"]] == [0, 4, 12, 28]
    assert trio.current_time() - start < 30
    assert (result.outcome, result.attempts, result.error) == (
        PushOutcome.UNREACHABLE,
        4,
        "connection refused",
    )


@pytest.mark.trio
async def test_host_key_mismatch_is_never_retried(
    autojump_clock: trio.testing.MockClock, store: PublishStore
) -> None:
    t = Scripted({"m": [HostKeyMismatch("host key not verifiable"), OK]})
    (result,) = await publisher(store, t, ["m"], max_attempts=5).run([mirror("m")])
    assert (result.outcome, result.attempts) == (PushOutcome.HOST_KEY_MISMATCH, 1)


@pytest.mark.trio
async def test_hanging_command_times_out_per_phase_and_others_finish(
    autojump_clock: trio.testing.MockClock, store: PublishStore
) -> None:
    t = Scripted({"hang": [HANG], "fast": [OK]})
    p = publisher(store, t, ["hang", "fast"], command_timeout=50, run_timeout=600)
    start = trio.current_time()
    results = {r.name: r for r in await p.run([mirror("hang"), mirror("fast")])}
    assert results["fast"].outcome is PushOutcome.OK
    assert results["hang"].outcome is PushOutcome.TIMEOUT
    assert "no report within 50 s" in (results["hang"].error or "")
    assert 50 <= trio.current_time() - start < 51
    assert t.open_now == 0  # every session closed


@pytest.mark.trio
async def test_queued_is_polled_until_served(
    autojump_clock: trio.testing.MockClock, store: PublishStore
) -> None:
    t = Scripted({"m": [QUEUED, QUEUED, QUEUED, OK]})
    (result,) = await publisher(store, t, ["m"], poll_initial=5, poll_max=20).run([mirror("m")])
    assert result.outcome is PushOutcome.OK and result.attempts == 4
    assert t.requests["m"][0].startswith("sync run-id=R ")
    assert t.requests["m"][1:] == ["status"] * 3


@pytest.mark.trio
async def test_queued_forever_ends_as_timeout_at_the_run_deadline(
    autojump_clock: trio.testing.MockClock, store: PublishStore
) -> None:
    t = Scripted({"m": [QUEUED]})
    start = trio.current_time()
    (result,) = await publisher(store, t, ["m"], poll_initial=5, poll_max=20, run_timeout=120).run(
        [mirror("m")]
    )
    assert result.outcome is PushOutcome.TIMEOUT and "queued" in (result.error or "")
    assert trio.current_time() - start <= 120


@pytest.mark.trio
async def test_handshakes_and_sessions_are_bounded_separately(
    autojump_clock: trio.testing.MockClock, store: PublishStore
) -> None:
    names = [f"m{i}" for i in range(40)]
    t = Scripted({n: [OK] for n in names})
    p = publisher(store, t, names, handshake_concurrency=3, session_concurrency=10)
    results = await p.run([mirror(n) for n in names])
    assert {r.outcome for r in results} == {PushOutcome.OK}
    assert t.max_open == 10
    assert p._handshakes.borrowed_tokens == 0 and p._sessions.borrowed_tokens == 0


@pytest.mark.trio
async def test_cancellation_records_cancelled_for_in_flight_mirrors(
    autojump_clock: trio.testing.MockClock, store: PublishStore
) -> None:
    t = Scripted({"hang": [HANG], "fast": [OK]})
    p = publisher(store, t, ["hang", "fast"], command_timeout=500)
    results: list[Any] = []
    async with trio.open_nursery() as nursery:

        async def go() -> None:
            results.extend(await p.run([mirror("hang"), mirror("fast")]))

        nursery.start_soon(go)
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    outcomes = {t.mirror: t.outcome for t in store.targets("R")}
    assert outcomes == {"fast": "ok", "hang": "cancelled"}
    (attempt,) = store.attempts("R", "hang")
    assert attempt["finished_at"] is not None and attempt["outcome"] == "cancelled"


@pytest.mark.trio
async def test_run_deadline_cuts_an_attempt_and_says_timeout(
    autojump_clock: trio.testing.MockClock, store: PublishStore
) -> None:
    t = Scripted({"m": [HANG]})
    p = publisher(store, t, ["m"], command_timeout=500, run_timeout=60)
    (result,) = await p.run([mirror("m")])
    assert result.outcome is PushOutcome.TIMEOUT and result.error == "run deadline passed"
    (attempt,) = store.attempts("R", "m")
    assert (attempt["outcome"], attempt["error"]) == ("timeout", "run deadline passed")
    assert t.open_now == 0


@pytest.mark.trio
@pytest.mark.usefixtures("upper_bound_jitter")
async def test_deadline_during_backoff_keeps_the_last_error(
    autojump_clock: trio.testing.MockClock, store: PublishStore
) -> None:
    t = Scripted({"m": [Unreachable("connection refused")] * 10})
    # the stop looks ahead at the next sleep: retrying ends before the deadline, with the real error
    p = publisher(
        store,
        t,
        ["m"],
        backoff_initial=4,
        max_attempts=10,
        run_timeout=5,
        connect_timeout=2,
        login_timeout=2,
    )
    (result,) = await p.run([mirror("m")])
    assert result.outcome is PushOutcome.UNREACHABLE
    assert result.error == "connection refused"


def _busy_reply() -> Reply:
    """Every source the client tried was at its ``max connections`` (exit 75)."""
    attempts = [
        {"source": s, "exit_code": 5, "duration_s": 0.1, "error": "rsync_busy: @ERROR: max"}
        for s in ("rsync1.clamav.net", "rsync2.clamav.net")
    ]
    doc = report(
        "failed",
        attempts=attempts,
        error={"kind": "rsync_busy", "message": "rsync2.clamav.net: max connections (20)"},
    )
    return Reply(75, doc.encode(), b"")


@pytest.mark.trio
async def test_busy_answers_are_the_sources_pace_not_failures(
    autojump_clock: trio.testing.MockClock, store: PublishStore
) -> None:
    """Without [[sources]] nothing paces the one key's source: six busy answers in a row are
    retried after the backoff without using up max_attempts, and the mirror ends ok."""
    t = Scripted({"m": [_busy_reply()] * 6 + [OK]})
    p = publisher(store, t, ["m"], backoff_initial=1, backoff_max=4, max_attempts=3)
    (result,) = await p.run([mirror("m")])
    assert (result.outcome, result.attempts) == (PushOutcome.OK, 7)
    rows = store.attempts("R", "m")
    assert [r["verdict"] for r in rows] == ["retry"] * 6 + ["ok"]


@pytest.mark.trio
async def test_busy_answers_do_not_lift_the_limit_on_failures(
    autojump_clock: trio.testing.MockClock, store: PublishStore
) -> None:
    """Busy answers between them, the mirror's own failures still end it at max_attempts."""
    dropped = ConnectionDropped("lost")
    t = Scripted({"m": [dropped, _busy_reply(), dropped, _busy_reply(), dropped, OK]})
    p = publisher(store, t, ["m"], backoff_initial=1, backoff_max=4, max_attempts=3)
    (result,) = await p.run([mirror("m")])
    assert result.outcome is not PushOutcome.OK and result.attempts == 5


@pytest.mark.trio
async def test_busy_answers_stop_at_the_run_deadline(
    autojump_clock: trio.testing.MockClock, store: PublishStore
) -> None:
    t = Scripted({"m": [_busy_reply()]})  # busy for ever
    p = publisher(store, t, ["m"], backoff_initial=1, backoff_max=4, max_attempts=3, run_timeout=60)
    start = trio.current_time()
    (result,) = await p.run([mirror("m")])
    assert result.outcome is not PushOutcome.OK and result.attempts > 3
    assert trio.current_time() - start <= 60
