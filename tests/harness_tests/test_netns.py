"""The network namespace cuts a process off from every loopback server of the root namespace
and leaves it exactly one way out: a server listening on the veth's root-side address.

How it was proven able to fail: the same connect, run outside the namespace, succeeds (checked
below, so the refusal inside means something); with ``listen_on`` left out of `Named` the
query from inside got no answer; with `close()` made a no-op the clean-up test failed."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.harness.binaries import require
from devtools.harness.clockshift import env_without_libfaketime
from devtools.harness.named import Named
from devtools.harness.netns import NetNs, NetnsUnavailable
from devtools.harness.ports import free_port

CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()
except OSError as err:
    print(type(err).__name__, err)
    sys.exit(1)
print("connected")
"""


def _ip_links() -> str:
    return subprocess.run(
        [require("ip"), "-o", "link"], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def netns() -> Iterator[NetNs]:
    try:
        with NetNs() as ns:
            yield ns
    except NetnsUnavailable as err:
        pytest.skip(str(err))


@pytest.fixture
def mirror_listener() -> Iterator[tuple[str, int]]:
    """A TCP listener on a root-namespace loopback address, as a mirror's sshd/nginx is."""
    host = "127.0.1.23"
    with socket.socket() as s:
        s.bind((host, free_port(host)))
        s.listen(8)
        yield host, s.getsockname()[1]


def test_inside_reaches_bind_on_the_veth_but_no_loopback_server(
    netns: NetNs, mirror_listener: tuple[str, int], tmp_path: Path
) -> None:
    host, port = mirror_listener
    outside = subprocess.run(
        [sys.executable, "-c", CONNECT, host, str(port)], capture_output=True, text=True
    )
    assert outside.returncode == 0, outside.stdout
    inside = netns.run(
        [sys.executable, "-c", CONNECT, host, str(port)], capture_output=True, text=True
    )
    assert inside.returncode == 1 and "ConnectionRefusedError" in inside.stdout, inside
    via_veth = netns.run(
        [sys.executable, "-c", CONNECT, netns.root_address, str(port)],
        capture_output=True,
        text=True,
    )
    assert via_veth.returncode == 1, via_veth.stdout  # it listens on 127.0.1.23 only

    with Named(tmp_path / "named", listen_on=[netns.root_address]) as named:
        dig = netns.run(
            [
                require("dig"),
                f"@{netns.root_address}",
                "-p",
                str(named.port),
                "+short",
                "+tcp",
                "+time=3",
                "+tries=1",
                "clamav.net",
                "SOA",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            env=env_without_libfaketime(),
        )
        assert dig.returncode == 0, dig.stdout + dig.stderr
        assert dig.stdout.split()[2] == "1"  # ns1.clamav.net. hostmaster.clamav.net. SERIAL ...
        # and 127.0.0.1 inside is the namespace's own: the primary is not there
        cut = netns.run(
            [sys.executable, "-c", CONNECT, "127.0.0.1", str(named.port)],
            capture_output=True,
            text=True,
        )
        assert cut.returncode == 1, cut.stdout


def test_everything_is_removed_on_exit_even_after_a_failure() -> None:
    ns = NetNs()
    with pytest.raises(RuntimeError, match="boom"):
        try:
            with ns:
                assert (
                    ns.name
                    in subprocess.run(
                        [require("ip"), "netns", "list"], capture_output=True, text=True
                    ).stdout
                )
                assert ns.root_veth in _ip_links()
                raise RuntimeError("boom")
        except NetnsUnavailable as err:
            pytest.skip(str(err))
    listed = subprocess.run([require("ip"), "netns", "list"], capture_output=True, text=True)
    assert ns.name not in listed.stdout
    assert ns.root_veth not in _ip_links()
    ns.close()  # twice is harmless
