"""The two command lines, parsed by argparse without printing or exiting: usage is exit 64."""

from __future__ import annotations

import pytest

from clientside.core.args import Args, UsageError, parse_args
from clientside.core.setupargs import parse_setup_args

R1 = "rsync1.clamav.net"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([R1], Args(None, R1, False, False, False)),
        (["--config", "c.conf", R1], Args("c.conf", R1, False, False, False)),
        ([R1, "--config=c.conf"], Args("c.conf", R1, False, False, False)),
        (["--home", "/h", R1, "--config", "c"], Args("c", R1, False, False, False, "/h")),
        (["--doctor"], Args(None, None, True, False, False)),
        (["--doctor", "--config", "c", R1], Args("c", R1, True, False, False)),
        (["--config", "c", "doctor"], Args("c", None, True, False, False)),
        (["doctor", R1], Args(None, R1, True, False, False)),
        (["doctor", "--config", "c", R1], Args("c", R1, True, False, False)),
        (["-h"], Args(None, None, False, True, False)),
        (["--help"], Args(None, None, False, True, False)),
        (["--version"], Args(None, None, False, False, True)),
    ],
)
def test_command_line(argv: list[str], expected: Args) -> None:
    assert parse_args(argv) == expected


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["a", "b"],
        ["--rsh=x", R1],
        ["-e", "x", R1],
        ["--conf", "c", R1],  # no abbreviations
        ["--config"],
        ["--doctor=yes"],
        ["-5"],
        ["--", "-x"],
        ["--setup", R1],  # setup is a subcommand, not a switch
    ],
)
def test_usage_errors(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse_args(argv)


def test_setup_command_line() -> None:
    args = parse_setup_args(["--dry-run", "--keys-dir", "/k", "--client=/c/clam-clientsync"])
    assert args.values == {"--keys-dir": "/k", "--client": "/c/clam-clientsync"}
    assert args.dry_run and not args.help
    assert parse_setup_args(["-h"]).help
    both = parse_setup_args(["--keys", "f", "--signers", "s", "--principal", "p@x"])
    assert both.values == {"--keys": "f", "--signers": "s", "--principal": "p@x"}


@pytest.mark.parametrize(
    ("argv", "why"),
    [
        (["--keys", "f", "--keys-dir", "d", "--signers", "s"], "not both"),
        (["--keys", "f"], "needs --signers"),
        (["--home"], "expected one argument"),
        (["extra"], "unrecognized arguments"),
        (["--dry"], "unrecognized arguments"),
    ],
)
def test_setup_usage_errors(argv: list[str], why: str) -> None:
    with pytest.raises(UsageError, match=why):
        parse_setup_args(argv)
