"""What the operator sees during and after a publish: a rich progress display when stderr is
a terminal, plain lines otherwise, and the summary grouped by problem. rich is imported only
for a terminal (it is ~40 ms of a publish's start-up, which logs and pipes need not pay).

Mirror names and errors came from outside: every line is cleaned (`syncd.text.clean`) as
it is printed, and rich never reads markup in them (escaped, or printed with markup off)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from syncd.publish.classify import Judgement
from syncd.publish.outcome import PushOutcome, Verdict
from syncd.publish.summary import MirrorResult, group, summary_lines, unproven_lines
from syncd.text import clean

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID


class PlainProgress:
    """One line per event on `stream`: fit for logs and pipes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.total = self.done = self.failed = 0

    def _say(self, text: str) -> None:
        print(f"syncd: {clean(text, None)}", file=self.stream, flush=True)

    def start(self, total: int) -> None:
        self.total = total
        self._say(f"publishing to {total} mirror(s)")

    def attempt(self, mirror: str, verb: str, number: int, judgement: Judgement) -> None:
        if judgement.verdict in (Verdict.RETRY, Verdict.QUEUED):
            self._say(f"{mirror}: {verb} #{number}: {judgement.verdict.value}: {judgement.error}")

    def finished(self, result: MirrorResult) -> None:
        self.done += 1
        self.failed += result.outcome is not PushOutcome.OK
        detail = f": {result.error}" if result.error else ""
        self._say(f"[{self.done}/{self.total}] {result.name}: {result.outcome.value}{detail}")


class RichProgress:
    """A live display: done / failed / in flight, rate and ETA."""

    def __init__(self, console: Console) -> None:
        # rich only for a terminal (a live display exists only there): start-up time otherwise
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console
        self.progress = Progress(
            TextColumn("[bold]publish"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed, {task.fields[inflight]} in flight"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task: TaskID | None = None
        self.total = self.done = self.failed = 0
        self._elapsed_start = 0.0

    def start(self, total: int) -> None:
        self.total = total
        self.progress.start()
        self.task = self.progress.add_task(
            "publish", total=total, failed=0, inflight=total, rate=""
        )

    def attempt(self, mirror: str, verb: str, number: int, judgement: Judgement) -> None:
        if judgement.verdict is Verdict.RETRY:
            self.progress.console.print(
                f"[yellow]{_markup_free(mirror)}[/]: retrying ({_markup_free(judgement.error)})",
                markup=True,
                highlight=False,
            )

    def finished(self, result: MirrorResult) -> None:
        self.done += 1
        self.failed += result.outcome is not PushOutcome.OK
        if self.task is None:
            return
        task = self.progress.tasks[0]
        rate = f"{self.done / task.elapsed:.1f}/s" if task.elapsed else ""
        self.progress.update(
            self.task,
            advance=1,
            failed=self.failed,
            inflight=self.total - self.done,
            rate=rate,
        )
        if self.done >= self.total:
            self.stop()

    def stop(self) -> None:
        self.progress.stop()


def _markup_free(text: str) -> str:
    """`text` (from outside) cleaned and escaped, to sit inside rich markup as plain text."""
    # rich only for a terminal (markup is written only there): start-up time otherwise
    from rich.markup import escape

    return escape(clean(text, None))


STYLE = {
    PushOutcome.OK: "green",
    PushOutcome.HOST_KEY_MISMATCH: "bold red",
    PushOutcome.AUTH_FAILED: "red",
    PushOutcome.FAILED: "red",
    PushOutcome.TIMEOUT: "yellow",
    PushOutcome.UNREACHABLE: "yellow",
    PushOutcome.CANCELLED: "magenta",
}


def print_summary(results: Sequence[MirrorResult], run_id: str, *, console: Console | None) -> None:
    """Print the summary to stderr: with colour on a terminal, plain lines otherwise."""
    if console is None:
        for line in summary_lines(results, run_id):
            print(clean(line, None), file=sys.stderr)
        return
    ok = sum(r.outcome is PushOutcome.OK for r in results)
    console.print(
        f"[bold]run {_markup_free(run_id)}[/]: {ok} of {len(results)} mirrors serve the release"
    )
    for g in group(results, run_id):
        style = STYLE[g.outcome]
        if g.outcome is PushOutcome.OK:
            console.print(f"[{style}]{g.title}[/]: {len(g.mirrors)}")
            for line in unproven_lines(g.mirrors):
                console.print(clean(line, None), markup=False, highlight=False, soft_wrap=True)
            continue
        console.print(f"[{style}]{g.title}[/] ({len(g.mirrors)}):")
        for r in g.mirrors:
            console.print(
                clean(f"  {r.name}: {r.error or g.outcome.value} [{r.attempts} attempt(s)]", None),
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        for action in g.actions:
            # commands stay on one line, to be copied as they are
            console.print(
                clean(f"  next: {action}", None), markup=False, highlight=False, soft_wrap=True
            )
