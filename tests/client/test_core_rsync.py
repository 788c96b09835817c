"""rsync argv/env building, the exit-code table, and output parsing."""

from __future__ import annotations

import pytest

from clientside.core.config import Source
from clientside.core.rsyncplan import (
    build_argv,
    build_env,
    classify,
    itemized,
    parse_stats,
    parse_version,
    source_url,
    version_warning,
)

ARGV = build_argv(
    "/usr/bin/rsync",
    source_url(Source("r1", "127.0.0.1", 18731), "clamavdb", "clamsync"),
    "/srv/to/.clam-clientsync/staging",
    patterns=["/local_*", "local_*"],
    max_delete=100,
    timeout=180,
    contimeout=30,
)


def test_argv_is_a_list_with_positionals_after_double_dash() -> None:
    sep = ARGV.index("--")
    assert ARGV[sep + 1 :] == [
        "rsync://clamsync" + "@127.0.0.1:18731/clamavdb/",
        "/srv/to/.clam-clientsync/staging/",
    ]
    assert all(a.startswith("-") for a in ARGV[1:sep])


def test_argv_has_the_safety_flags() -> None:
    for flag in (
        "--recursive",
        "--times",
        "--hard-links",
        "--links",
        "--safe-links",
        "--chmod=D755,F644",
        "--no-owner",
        "--no-group",
        "--no-devices",
        "--delay-updates",
        "--delete-delay",
        "--max-delete=100",
        "--timeout=180",
        "--contimeout=30",
        "--no-motd",
        "--stats",
    ):
        assert flag in ARGV
    for bad in ("--inplace", "--append", "-e", "--rsh", "--compress"):
        assert not any(a.startswith(bad) for a in ARGV)


def test_local_files_are_hidden_and_protected_in_pairs() -> None:
    rules = [a for a in ARGV if a.startswith("--filter=")]
    assert rules == [
        "--filter=H /local_*",
        "--filter=P /local_*",
        "--filter=H local_*",
        "--filter=P local_*",
    ]


def test_env_is_rebuilt_and_password_only_there() -> None:
    env = build_env("/home/m", "pw")
    assert env == {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LC_ALL": "C",
        "LANG": "C",
        "HOME": "/home/m",
        "RSYNC_PASSWORD": "pw",
    }
    assert "pw" not in " ".join(ARGV)
    assert "RSYNC_PASSWORD" not in build_env("/", None)


@pytest.mark.parametrize(
    ("code", "output", "verdict", "kind", "failover"),
    [
        (0, "", "ok", None, False),
        (24, "", "ok", None, False),
        (10, "", "transient", "rsync_transient", True),
        (12, "", "transient", "rsync_transient", True),
        (30, "", "transient", "rsync_transient", True),
        (35, "", "transient", "rsync_transient", True),
        (
            5,
            "@ERROR: max connections (4) reached -- try again later",
            "transient",
            "rsync_busy",
            True,
        ),
        (5, "@ERROR: auth failed on module clamavdb", "permanent", "auth_failed", True),
        (5, "@ERROR: Unknown module 'x'", "permanent", "unknown_module", True),
        (5, "something else", "transient", "rsync_transient", True),
        (11, "", "local", "disk_full", False),
        (25, "", "local", "max_delete", False),
        (1, "", "failure", "rsync_failed", True),
        (2, "", "failure", "rsync_failed", True),
        (3, "", "failure", "rsync_failed", True),
        (4, "", "failure", "rsync_failed", True),
        (13, "", "failure", "rsync_failed", True),
        (14, "", "failure", "rsync_failed", True),
        (15, "", "failure", "rsync_failed", True),
        (16, "", "failure", "rsync_failed", True),
        (21, "", "failure", "rsync_failed", True),
        (22, "", "failure", "rsync_failed", True),
        (19, "", "interrupted", "interrupted", False),
        (20, "", "interrupted", "interrupted", False),
        (-9, "", "interrupted", "interrupted", False),
        (99, "", "failure", "rsync_failed", True),
    ],
)
def test_exit_code_table(
    code: int, output: str, verdict: str, kind: str | None, failover: bool
) -> None:
    got = classify(code, output)
    assert (got.verdict, got.kind, got.failover) == (verdict, kind, failover)


STATS = """\
>f+++++++++ daily.cvd
*deleting   stray

Number of files: 5 (reg: 4, dir: 1)
Number of created files: 4 (reg: 4)
Number of deleted files: 1 (reg: 1)
Number of regular files transferred: 4
Total file size: 12,384 bytes
Total bytes sent: 99
Total bytes received: 1,238,747
"""


def test_stats_and_itemized() -> None:
    s = parse_stats(STATS)
    assert (s.files_transferred, s.bytes_received, s.files_deleted) == (4, 1238747, 1)
    assert parse_stats("nothing").files_transferred is None
    assert itemized(STATS) == [">f+++++++++ daily.cvd", "*deleting   stray"]


def test_version() -> None:
    assert parse_version("rsync  version 3.2.7  protocol version 31\n") == "3.2.7"
    assert parse_version("garbage") is None
    assert version_warning("3.2.7") is not None
    assert version_warning("3.4.0") is None
    assert version_warning(None) == "rsync version unknown"
