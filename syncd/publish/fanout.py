"""The fan-out of ``syncd publish``: push one release to every planned mirror at once
(bounded), retry what is worth retrying, poll queued mirrors, prove the result over HTTP, and
record everything.

One nursery owns the fan-out. Two bounds: open sessions (cheap, may wait minutes on rsync)
and, inside them, handshakes (CPU-bound); with sources, each source's and hub's transfer slots
too. Each goes to the waiting push first in the push order (`syncd.publish.slots.RankedSlots`),
whatever order trio runs a batch of new tasks in.
Each phase has its own deadline, and every mirror the run's deadline. The record is written
by its own thread (`syncd.publish.recordwriter`): no task here ever blocks on SQLite, so a
held write lock cannot stall a deadline. Decisions are the core's (`judge_reply`,
`judge_poll`); this module only moves data between the transport, the record and the
display; how a push ends when no reply decides it (deadlines, cancellation) is the core's
too (`syncd.publish.verdicts`).

With hubs (mirrors serving a second wave, `syncd.publish.sources.plan_tiers`), a mirror planned
through a hub waits (up to ``hub_wait``) until its hub's own push ends: once the hub serves
the release it is pushed to pull from the hub (``source=`` with the release's md5 pins), else
it goes to its source. Hubs are pushed first.

One mirror's fault is its own: each mirror's task is a failure boundary (`Publisher._push_one`),
so whatever its push, its report, its judgement, its proof, its record or its display raises
that no adapter translated ends that mirror ``failed`` with the reason, never the fan-out; its
HTTP proof has its own deadline (``proof_timeout``); a record write that fails (StoreError)
loses that write only; and a report that names another run than the request's is not an
answer to it (that mirror's failure).
"""

from __future__ import annotations

import contextlib
import functools
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import trio

from pushwire.request import render_request
from syncd.inventory.model import Mirror
from syncd.publish.classify import Judgement, judge_error, judge_poll, judge_reply
from syncd.publish.config import Policy
from syncd.publish.errors import CommandTimeout, HandshakeTimeout, PushError
from syncd.publish.outcome import PushOutcome, Verdict
from syncd.publish.report import Report, ReportError, parse_report
from syncd.publish.slots import RankedSlots
from syncd.publish.sources import Decision, SourceBoard, SourceSpec, answered_busy
from syncd.publish.ssh import Reply
from syncd.publish.store import PublishStore
from syncd.publish.summary import MirrorResult, Proof
from syncd.publish.verdicts import Ending, ended, final, interrupted
from syncd.sqlite import StoreError
from syncd.text import clean
from syncd.traffic.store import record_report

T = TypeVar("T")
Judge = Callable[[int | None, Report | None, str, Mapping[str, int]], Judgement]


class Transport(Protocol):
    """What publish needs from ssh (syncd.publish.ssh.PinnedSsh; fakes in tests)."""

    async def open(self, mirror: Mirror) -> Any: ...
    async def run(self, session: Any, request: str) -> Reply: ...
    async def close(self, session: Any) -> None: ...


class Record(Protocol):
    """Where publish writes the record (syncd.publish.recordwriter.RecordWriter): `submit`
    hands a job over without waiting; `result` waits for one without blocking the loop."""

    def submit(self, job: Callable[[PublishStore], T]) -> Future[T]: ...
    async def result(self, future: Future[T]) -> T: ...


class Progress(Protocol):
    """Where publish reports what happens (a rich display, plain lines, or nothing)."""

    def start(self, total: int) -> None: ...
    def attempt(self, mirror: str, verb: str, number: int, judgement: Judgement) -> None: ...
    def finished(self, result: MirrorResult) -> None: ...


class NoProgress:
    def start(self, total: int) -> None:
        pass

    def attempt(self, mirror: str, verb: str, number: int, judgement: Judgement) -> None:
        pass

    def finished(self, result: MirrorResult) -> None:
        pass


Prover = Callable[[Mirror, Mapping[str, int]], Awaitable[str | None]]


@dataclass
class _HubEnd:
    """`event` is set when a hub's push has ended (the board knows whether it serves the
    release)."""

    event: trio.Event = field(default_factory=trio.Event)


@dataclass
class _Exchange:
    judgement: Judgement
    report: Report | None = None
    raw: dict[str, Any] | None = None
    exit_status: int | None = None


@dataclass
class Publisher:
    transport: Transport
    record: Record
    run_id: str
    expected: dict[str, int]
    policy: Policy
    progress: Progress = field(default_factory=NoProgress)
    prover: Prover | None = None
    wall: Callable[[], float] = time.time
    handle_signals: bool = True
    cancelled: bool = False
    # with [[sources]]: each source's transport (its pusher key), and the core's plan of
    # which mirror goes to which source (syncd.publish.sources.assign); empty: `transport` only
    sources: Sequence[SourceSpec] = ()
    transports: Mapping[str, Transport] = field(default_factory=dict)
    planned: Mapping[str, Decision] = field(default_factory=dict)
    # with hubs: the hubs planned in this run, and the release's CVD md5s that pin what a
    # second-wave mirror may take from one
    hubs: Sequence[SourceSpec] = ()
    pins: Mapping[str, str] = field(default_factory=dict)
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        # in the push order too (slowest first), when a fleet is larger than either bound
        self._handshakes = RankedSlots(self.policy.handshake_concurrency)
        self._sessions = RankedSlots(self.policy.session_concurrency)
        self._request = render_request(
            "sync", self.run_id, self.expected, deadline=self.policy.command_timeout
        )
        self._latest: dict[str, _Exchange] = {}
        self._ended: set[str] = set()  # mirrors whose end is in the results
        self._tries: dict[str, int] = {}  # attempts made by this run, should the record fail
        self._board = SourceBoard(self.sources, self.hubs)
        # one limiter per source and hub: the transfers it serves at once (a sync holds one)
        self._transfers = {
            s.name: RankedSlots(s.max_transfers) for s in (*self.sources, *self.hubs)
        }
        self._chosen: dict[str, tuple[Decision, dict[str, Any] | None]] = {}
        self._hub_ends = {h.name: _HubEnd() for h in self.hubs}
        self._rank: dict[str, int] = {}  # each mirror's place in the push order

    # the whole run
    async def run(self, mirrors: Sequence[Mirror]) -> list[MirrorResult]:
        """Push to `mirrors` until each has an outcome or the run's deadline; return results."""
        self._deadline = trio.current_time() + self.policy.run_timeout
        results: list[MirrorResult] = []
        self.progress.start(len(mirrors))
        async with trio.open_nursery() as outer:
            if self.handle_signals:
                outer.start_soon(self._watch_signals, outer.cancel_scope)
            async with trio.open_nursery() as fanout:
                # hubs first, then the others in the plan's order (slowest first): the
                # sources' and hubs' slots go in that order (RankedSlots), whatever order
                # trio runs this batch of new tasks in
                hubs = [m for m in mirrors if m.name in self._hub_ends]
                others = [m for m in mirrors if m.name not in self._hub_ends]
                self._rank = {m.name: i for i, m in enumerate((*hubs, *others))}
                for mirror in (*hubs, *others):
                    fanout.start_soon(self._push_one, mirror, results)
            outer.cancel_scope.cancel()  # stops the signal watcher
        return results

    async def _watch_signals(self, scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                self.cancelled = True
                scope.cancel()
                return

    # one mirror
    async def _push_one(self, mirror: Mirror, results: list[MirrorResult]) -> None:
        """The task of one mirror, and its failure boundary: whatever its handling raises
        that no adapter translated, from reading its report to recording and showing its end
        (a bug, a value no sink takes), ends that mirror ``failed`` with the exception's
        class and cleaned message, recorded when the record takes it, and never the others.
        Only a cancellation (the run's own) passes."""
        started = trio.current_time()
        try:
            await self._handle(mirror, results, started)
        except Exception as err:
            judgement = ended(Ending.BROKEN, detail=clean(f"{type(err).__name__}: {err}", 300))
            self._hub_ended(mirror.name, judgement)
            if mirror.name in self._ended:  # it failed showing an end already recorded
                return
            with trio.CancelScope(shield=True):
                await self._finish(mirror, _Exchange(judgement), started, results, last_resort=True)

    async def _handle(self, mirror: Mirror, results: list[MirrorResult], started: float) -> None:
        last = _Exchange(ended(Ending.RUN_DEADLINE))
        proven = False
        try:
            with trio.fail_at(self._deadline):
                last = await self._sync(mirror)
                if last.judgement.verdict is Verdict.QUEUED:
                    last = await self._poll(mirror, last)
                self._hub_ended(mirror.name, last.judgement)
                if last.judgement.verdict is Verdict.OK and self.prover and mirror.http:
                    problem = await self._prove(mirror)
                    proven = not problem
                    if problem:
                        judgement = ended(Ending.NOT_SERVED, detail=problem)
                        last = _Exchange(judgement, last.report, last.raw)
        except trio.TooSlowError:
            last = self._latest.get(mirror.name, last)
            judgement = ended(Ending.RUN_DEADLINE, last.judgement)
            last = _Exchange(judgement, last.report, last.raw)
        except trio.Cancelled:
            judgement = ended(Ending.CANCELLED)
            with trio.CancelScope(shield=True):
                await self._finish(
                    mirror, _Exchange(judgement, last.report, last.raw), started, results
                )
            raise
        self._hub_ended(mirror.name, last.judgement)  # however it ended: its wave goes on
        with trio.CancelScope(shield=True):  # recorded and reported, even if cancelled now
            await self._finish(mirror, last, started, results, proven=proven)

    def _hub_ended(self, name: str, judgement: Judgement) -> None:
        """Hub `name`'s push has ended (its proof over HTTP need not wait): its second wave
        may pull from it when it serves the release, else goes to its sources."""
        end = self._hub_ends.get(name)
        if end is None or end.event.is_set():
            return
        if judgement.verdict is not Verdict.OK:
            outcome, error = final(judgement)
            why = f"ended {outcome.value}" + (f": {clean(error, 120)}" if error else "")
            self._board.hub_gone(name, why)
        end.event.set()

    async def _through_hub(self, planned: Decision) -> Decision:
        """Where a mirror planned through a hub goes: wait for the hub's push to end (up to
        ``hub_wait``), then the hub, or its source when the hub did not serve the release."""
        end = self._hub_ends.get(planned.source)
        if end is None:  # a hub not pushed in this run: its source
            self._board.hub_gone(planned.source, "is not pushed in this run")
            return self._board.route(planned)
        limit = self.policy.hub_wait
        with trio.move_on_after(limit):
            await end.event.wait()
        if not end.event.is_set():
            self._board.hub_gone(
                planned.source, f"did not serve the release within {limit:g} s (hub_wait)"
            )
        return self._board.route(planned)

    async def _prove(self, mirror: Mirror) -> str | None:
        """The HTTP proof of `mirror` (the prover's problem, or None), within proof_timeout:
        one slow mirror's proof ends then, and never holds the run's end."""
        assert self.prover is not None
        limit = self.policy.proof_timeout
        with trio.move_on_after(limit):
            return await self.prover(mirror, self.expected)
        return (
            f"http: the proof did not finish within {limit:g} s (proof_timeout): "
            "the mirror answers too slowly"
        )

    async def _finish(
        self,
        mirror: Mirror,
        last: _Exchange,
        started: float,
        results: list[MirrorResult],
        *,
        proven: bool = False,
        last_resort: bool = False,
    ) -> None:
        """Record `mirror`'s end and tell the display. A write the record refuses (StoreError)
        loses that write only. As the `last_resort` of the failure boundary, the end holds no
        report, and whatever the record or the display raise is lost with it."""
        outcome, error = final(last.judgement)
        versions = last.report.versions() if last.report else None
        now, duration = self.wall(), trio.current_time() - started

        def record(store: PublishStore) -> int:
            store.finish_target(
                self.run_id,
                mirror.name,
                now,
                outcome=outcome.value,
                error=error,
                report=last.raw,
                versions=versions if outcome is PushOutcome.OK else None,
                duration_s=duration,
            )
            return store.attempt_count(self.run_id, mirror.name)

        try:
            attempts = await self.record.result(self.record.submit(record))
        except StoreError:  # not recorded (publish_main says so): the result stands
            attempts = self._tries.get(mirror.name, 0)
        except Exception:
            if not last_resort:
                raise
            attempts = self._tries.get(mirror.name, 0)
        result = MirrorResult(
            mirror.name,
            outcome,
            attempts,
            error,
            last.raw,
            mirror.host,
            mirror.port,
            tuple(mirror.admins),
            proof=(Proof.HTTP if proven else Proof.UNPROVEN) if outcome is PushOutcome.OK else None,
        )
        results.append(result)
        self._ended.add(mirror.name)
        try:
            self.progress.finished(result)
        except Exception:
            if not last_resort:
                raise

    async def _sync(self, mirror: Mirror) -> _Exchange:
        """Send ``sync`` with retries of transient failures (full-jitter backoff). The first
        attempt is made before tenacity is set up: most mirrors need no other. An answer that
        every source was busy (``rsync_busy``) is the sources' pace, not a failure: it is
        retried after the backoff like the others but does not count towards
        ``max_attempts`` (the run's deadline still bounds it)."""
        first = await self._sync_attempt(mirror)
        if first.judgement.verdict is not Verdict.RETRY:
            return first
        made = [first]  # tenacity's attempt 1, already made: its schedule counts from it
        failures = [0 if answered_busy(first.raw) else 1]
        from syncd.publish.retrying import retrying  # tenacity: start-up time

        retrying_sync = retrying(
            lambda ex: ex.judgement.verdict is Verdict.RETRY,
            initial=self.policy.backoff_initial,
            most=self.policy.backoff_max,
            deadline=self._deadline,
            done=lambda: failures[0] >= self.policy.max_attempts,
        )

        async def attempt(m: Mirror) -> _Exchange:
            if made:
                return made.pop()
            done = await self._sync_attempt(m)
            failures[0] += 0 if answered_busy(done.raw) else 1
            return done

        result: _Exchange = await retrying_sync(attempt, mirror)
        return result

    async def _sync_attempt(self, mirror: Mirror) -> _Exchange:
        """One ``sync``; with sources, pushed to the source the core chooses now, holding one
        of its transfer slots (waiting for one is the pace a source's capacity sets)."""
        if not self.sources:
            return await self._exchange(mirror, "sync", self._request, judge_reply)
        before = self._chosen.get(mirror.name)
        planned = self.planned[mirror.name]
        if before:
            decision = self._board.retry_on(mirror.name, *before)
        elif planned.key is not None:
            decision = await self._through_hub(planned)
        else:
            decision = self._board.route(planned)
        result: _Exchange | None = None
        last = len(self.sources) + 1  # bounded: a turn moves off a hub, or to another source
        for turn in range(last + 1):
            async with self._transfers[decision.source].slot(self._rank.get(mirror.name, 0)):
                now = self._board.route(decision)  # learnt while waiting: it failed meanwhile
                if now.source == decision.source or turn == last:
                    # what ran when this one connected: a busy answer is about that moment
                    in_flight = {n: int(lim.borrowed_tokens) for n, lim in self._transfers.items()}
                    result = await self._exchange(
                        mirror, "sync", self._request_for(decision), judge_reply, decision
                    )
                    # learnt before the slot is free: who waits for it sees the news
                    self._learn(mirror, result, in_flight)
            if result is not None:
                break
            decision = now
        assert result is not None  # the last turn always pushes
        self._chosen[mirror.name] = (decision, result.raw)
        return result

    def _request_for(self, decision: Decision) -> str:
        """The sync request: through a hub, it names the hub and pins the release's CVDs."""
        if decision.key is None:
            return self._request
        return render_request(
            "sync",
            self.run_id,
            self.expected,
            deadline=self.policy.command_timeout,
            source=decision.source,
            pins=self.pins,
        )

    def _learn(self, mirror: Mirror, result: _Exchange, in_flight: dict[str, int]) -> None:
        """Feed the board one report; a source that answered busy gets fewer slots."""
        self._board.observe(mirror.name, result.raw, in_flight)
        for name, limiter in self._transfers.items():
            limiter.total_tokens = self._board.capacity[name]

    async def _poll(self, mirror: Mirror, first: _Exchange) -> _Exchange:
        """Ask a queued mirror for ``status`` (backoff) until it serves the release."""
        await trio.sleep(self.policy.poll_initial)
        from syncd.publish.retrying import retrying  # tenacity: start-up time

        polling = retrying(
            lambda ex: ex.judgement.verdict in (Verdict.QUEUED, Verdict.RETRY),
            initial=self.policy.poll_initial,
            most=self.policy.poll_max,
            deadline=self._deadline,
        )
        since = first.report.started_at if first.report else None
        chosen = self._chosen.get(mirror.name)
        result: _Exchange = await polling(
            self._exchange,
            mirror,
            "status",
            render_request("status"),
            functools.partial(judge_poll, since=since),
            chosen[0] if chosen else None,
        )
        if result.judgement.verdict is Verdict.QUEUED:
            return _Exchange(
                ended(Ending.STILL_QUEUED, result.judgement),
                result.report or first.report,
                result.raw or first.raw,
            )
        return result

    async def _exchange(
        self,
        mirror: Mirror,
        verb: str,
        request: str,
        judge: Judge,
        decision: Decision | None = None,
    ) -> _Exchange:
        """One attempt: connect (with `decision`'s source's key, when given), run `request`,
        judge the reply; recorded as it happens."""
        now = self.wall()
        source, reason = (decision.source, decision.reason) if decision else (None, None)
        transport = self.transports[decision.through] if decision else self.transport
        row: list[int] = []  # the attempt's row, once its start is written (read by its close)

        def start(store: PublishStore) -> tuple[int, int]:
            row.clear()  # written again (a batch rolled back): only this one counts
            written = store.start_attempt(
                self.run_id, mirror.name, verb, now, source=source, source_reason=reason
            )
            row.append(written[0])
            return written

        started = self.record.submit(start)
        result: _Exchange | None = None
        number = self._tries[mirror.name] = self._tries.get(mirror.name, 0) + 1
        try:
            with contextlib.suppress(StoreError):  # its start not recorded: push all the same
                _, number = await self.record.result(started)
            answers = self.run_id if verb == "sync" else None  # status: the last sync's report
            result = await self._talk(mirror, request, judge, transport, answers)
        except PushError as err:
            result = _Exchange(judge_error(err))
        finally:
            if result is None:  # interrupted: by the run's deadline, or cancelled
                result = _Exchange(interrupted(trio.current_time() >= self._deadline))
            # Runs on cancellation too: the attempt is closed in the record either way (the
            # job runs after the one that started it, so its row is known by then).
            self._close_attempt(row, result, mirror.name)
        self._latest[mirror.name] = result
        self.progress.attempt(mirror.name, verb, number, result.judgement)
        return result

    def _close_attempt(self, row: list[int], result: _Exchange, mirror: str) -> None:
        """Hand over the attempt's close. It reads the row its start wrote (not the start's
        future: the writer resolves futures only once their batch is committed, and this job
        may be in the same batch)."""
        now, j = self.wall(), result.judgement

        def close(store: PublishStore) -> None:
            if not row:  # its start was not recorded: nothing to close
                return
            store.finish_attempt(
                row[0],
                now,
                verdict=j.verdict.value,
                outcome=j.outcome.value,
                exit_status=result.exit_status,
                error=j.error or None,
                report=result.raw,
            )
            if result.raw is not None:  # what the mirror served, once per client report
                record_report(store.conn, mirror, now, result.raw)

        self.record.submit(close)

    async def _talk(
        self,
        mirror: Mirror,
        request: str,
        judge: Judge,
        transport: Transport,
        run_id: str | None = None,
    ) -> _Exchange:
        """Run `request` on `mirror` and judge its reply; a report naming another run than
        `run_id` (given) is no report to this request."""
        rank = self._rank.get(mirror.name, 0)
        async with self._sessions.slot(rank):
            async with self._handshakes.slot(rank):
                handshake = self.policy.connect_timeout + self.policy.login_timeout
                try:
                    with trio.fail_after(handshake):
                        session = await transport.open(mirror)
                except trio.TooSlowError:
                    raise HandshakeTimeout(f"no login within {handshake:g} s") from None
            try:
                with trio.fail_after(self.policy.command_timeout):
                    reply = await transport.run(session, request)
            except trio.TooSlowError:
                raise CommandTimeout(
                    f"no report within {self.policy.command_timeout:g} s "
                    "(the mirror's client keeps its own deadline)"
                ) from None
            finally:
                await transport.close(session)
        report: Report | None = None
        raw: dict[str, Any] | None = None
        problem = ""
        try:
            report, raw = parse_report(reply.stdout)
        except ReportError as err:
            problem = str(err)
            tail = clean(reply.stderr_tail.decode("utf-8", "replace"), 300).strip()
            if tail:
                problem += f"; stderr: {tail}"
        if report is not None and run_id is not None and (other := report.other_run(run_id)):
            report, raw, problem = None, None, other  # an answer to another push: none to ours
        judgement = judge(reply.exit_status, report, problem, self.expected)
        return _Exchange(judgement, report, raw, reply.exit_status)
