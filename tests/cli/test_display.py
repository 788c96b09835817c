"""The operator's view: a live display on a terminal, plain lines otherwise."""

from __future__ import annotations

import io

from rich.console import Console

from syncd.cli.display import PlainProgress, RichProgress, print_summary
from syncd.publish.classify import Judgement
from syncd.publish.outcome import PushOutcome, Verdict
from syncd.publish.summary import MirrorResult

RESULTS = [
    MirrorResult("a.test", PushOutcome.OK, 1, None),
    MirrorResult("b.test", PushOutcome.AUTH_FAILED, 1, "permission denied for our key"),
]


def test_plain_lines() -> None:
    out = io.StringIO()
    p = PlainProgress(out)
    p.start(2)
    p.attempt("b.test", "sync", 1, Judgement(Verdict.RETRY, PushOutcome.UNREACHABLE, "refused"))
    for r in RESULTS:
        p.finished(r)
    assert out.getvalue().splitlines() == [
        "syncd: publishing to 2 mirror(s)",
        "syncd: b.test: sync #1: retry: refused",
        "syncd: [1/2] a.test: ok",
        "syncd: [2/2] b.test: auth_failed: permission denied for our key",
    ]


def test_rich_display_and_summary_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    p = RichProgress(console)
    p.start(2)
    for r in RESULTS:
        p.finished(r)
    p.stop()
    print_summary(RESULTS, "R9", console=console)
    text = out.getvalue()
    assert "2/2" in text and "1 failed" in text
    assert "our key was refused" in text and "syncd publish --resume R9" in text
