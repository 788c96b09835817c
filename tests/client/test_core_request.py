"""The untrusted request: an exact vocabulary, everything else rejected."""

from __future__ import annotations

import pytest

from pushwire.request import Request, RequestError, parse_request


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (None, Request("sync", None, {}, None)),
        ("", Request("sync", None, {}, None)),
        ("sync", Request("sync", None, {}, None)),
        ("status", Request("status", None, {}, None)),
        ("version", Request("version", None, {}, None)),
        (
            "sync run-id=2026-11-25T09.30_x expect-daily=28033 expect-main=62 deadline=300",
            Request("sync", "2026-11-25T09.30_x", {"daily": 28033, "main": 62}, 300),
        ),
        ("run-id=abc expect-bytecode=335", Request("sync", "abc", {"bytecode": 335}, None)),
    ],
)
def test_vocabulary(command: str | None, expected: Request) -> None:
    assert parse_request(command) == expected


HOSTILE = [
    "sync\nrm -rf /",
    "sync; id",
    "sync && id",
    "$(touch /tmp/pwned)",
    "`id`",
    "--rsh=x",
    "-e x",
    "sync -e x",
    "internal-sftp",
    "/usr/lib/openssh/sftp-server",
    "rsync --server --sender -vlogDtpre.iLsfxC . /",
    "scp -t /tmp",
    "sync run-id=../../etc",
    "sync run-id=" + "a" * 65,
    "sync expect-daily=-1",
    "sync expect-daily=1e5",
    "sync expect-foo=1",
    "sync deadline=0",
    "sync deadline=999999999",
    "sync run-id=a run-id=b",
    "sync sync",
    "status sync",
    "sync\ttab",
    "sync\x00nul",
    "sync \x1b[31m",
    "syncé",
    "x" * 100_000,
    "sync " + "run-id=a " * 200,
]


@pytest.mark.parametrize("command", HOSTILE, ids=lambda c: repr(c[:30]))
def test_hostile_requests_are_rejected(command: str) -> None:
    with pytest.raises(RequestError):
        parse_request(command)


def test_rejection_message_is_bounded_and_printable() -> None:
    with pytest.raises(RequestError) as info:
        parse_request("a" * 500)
    assert len(str(info.value)) < 120
