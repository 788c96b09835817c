"""What ``syncd publish`` and ``syncd heartbeat`` share: the push's inputs from the options and
syncd.toml, and the push run under trio with its live display and summary."""

from __future__ import annotations

import functools
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from syncd.cli.common import need
from syncd.cli.display import PlainProgress, RichProgress, print_summary
from syncd.publish.command import Inputs
from syncd.publish.fanout import Progress
from syncd.publish.summary import MirrorResult
from syncd.settings import SyncdConfig

if TYPE_CHECKING:
    from rich.console import Console

T = TypeVar("T")


def push_inputs(
    cfg: SyncdConfig, inventory: Path | None, key: Path | None, state: Path | None
) -> Inputs:
    """The push's inventory, key and record: the options, else syncd.toml's (with [[sources]]
    and no --key, each source's key pushes its share: the first one's is the fallback)."""
    first = cfg.sources[0].key if cfg.sources else None
    return Inputs(
        inventory=need(inventory or cfg.inventory, "--inventory", "inventory", cfg),
        key=need(key or cfg.key or first, "--key", "key", cfg),
        state=need(state or cfg.state, "--state", "state", cfg),
        sources=key is None,
    )


def run_push(
    main: Callable[..., Awaitable[T]],
    *args: Any,
    results: Callable[[T], tuple[list[MirrorResult], str]],
) -> T:
    """Run a push (`main(*args, progress)` under trio) with a live display on a terminal, plain
    lines otherwise; print its summary (`results` of its outcome); return the outcome."""
    console: Console | None = None
    if sys.stderr.isatty():  # rich only for a terminal: its import is start-up time
        from rich.console import Console

        console = Console(stderr=True)
    progress: Progress = RichProgress(console) if console else PlainProgress()
    try:
        outcome: T = trio.run(functools.partial(main, *args, progress))
    finally:
        if isinstance(progress, RichProgress):
            progress.stop()
    mirrors, run_id = results(outcome)
    print_summary(mirrors, run_id, console=console)
    return outcome
