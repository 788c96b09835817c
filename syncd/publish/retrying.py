"""The retry loops of a publish, on tenacity: full-jitter exponential backoff, stopped before
the run's deadline (and when the caller's count of failures says so). A module of its own
because tenacity is imported only once a first attempt asks for a retry (most mirrors need
none, and its import is start-up time)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio
from tenacity import AsyncRetrying, RetryCallState, retry_if_result
from tenacity.stop import stop_base
from tenacity.wait import wait_random_exponential


class stop_before_deadline(stop_base):
    """Stop when the next attempt would start at or after `deadline` (trio's clock)."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return trio.current_time() + retry_state.upcoming_sleep >= self.deadline


class stop_when(stop_base):
    """Stop when `done()` says so (the failures counted so far reach the limit)."""

    def __init__(self, done: Callable[[], bool]) -> None:
        self.done = done

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.done()


def retrying(
    again: Callable[[Any], bool],
    *,
    initial: float,
    most: float,
    deadline: float,
    done: Callable[[], bool] | None = None,
) -> AsyncRetrying:
    """Given when a result asks for another attempt (`again`), the backoff's first and
    largest wait, the run's deadline (trio's clock) and, optionally, when to stop anyway
    (`done`), return the loop: it sleeps on trio and ends with the last result (never an
    exception of its own)."""
    stop: stop_base = stop_before_deadline(deadline)
    if done is not None:
        stop = stop_when(done) | stop
    return AsyncRetrying(
        sleep=trio.sleep,
        stop=stop,
        wait=wait_random_exponential(multiplier=initial, max=most),
        retry=retry_if_result(again),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
    )
