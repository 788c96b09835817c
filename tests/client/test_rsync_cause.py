"""An rsync that cannot reach its source: the report's message carries rsync's own cause (the
name that did not resolve, the refused connection), not only "error in socket I/O".

Proven to fail before the fix: classify() returned the exit code's table text alone.
"""

from __future__ import annotations

import subprocess

from clientside.core.rsyncplan import classify
from devtools.harness.binaries import require
from devtools.harness.ports import free_port

# rsync 3.x's output for a name that does not resolve (captured from rsync 3.5.0)
NOT_RESOLVED = (
    "rsync: getaddrinfo: rsync1.clamav.net 873: Name or service not known\n"
    "rsync error: error in socket IO (code 10) at clientserver.c(165) [Receiver=3.5.0]\n"
)


def test_a_name_that_does_not_resolve_is_named_in_the_message() -> None:
    got = classify(10, NOT_RESOLVED)
    assert got.kind == "rsync_transient" and got.failover
    assert got.message == (
        "error in socket I/O: getaddrinfo: rsync1.clamav.net 873: Name or service not known"
    )


def test_a_refused_connection_from_a_real_rsync_is_named_in_the_message() -> None:
    port = free_port()  # nothing listens there
    proc = subprocess.run(
        [require("rsync"), "--contimeout=5", f"rsync://127.0.0.1:{port}/clamavdb/", "/nowhere"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    got = classify(proc.returncode, proc.stdout + proc.stderr)
    assert got.kind == "rsync_transient", (proc.returncode, proc.stderr)
    assert "Connection refused" in got.message and "127.0.0.1" in got.message, got.message


def test_a_cause_is_bounded_and_only_for_transient_failures() -> None:
    long = "rsync: getaddrinfo: " + "x" * 5000 + "\n"
    assert len(classify(10, long).message) < 300
    assert classify(0, "rsync: some note\n").message == "ok"
