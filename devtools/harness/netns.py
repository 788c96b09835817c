"""A network namespace joined to the root namespace by one veth pair, for cutting a process
off from the loopback servers while leaving it one way out.

Inside, 127.0.0.0/8 is the namespace's own loopback: nothing the tests started on the root
namespace's 127.x addresses is reachable from there. The veth pair carries a private /30:
`root_address` on the root side, `inner_address` inside; a server that also listens on
`root_address` (``Named(listen_on=[ns.root_address])``) is the only thing the namespace reaches.
There is no default route inside. Needs CAP_SYS_ADMIN and CAP_NET_ADMIN (``ip netns add``);
`NetnsUnavailable` says when that is refused, so a test can skip with the reason."""

from __future__ import annotations

import ipaddress
import random
import secrets
import subprocess
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from devtools.harness.binaries import require

# the /30s are drawn from here; another test's namespace may hold one at the same time
POOL = ipaddress.ip_network("10.213.0.0/16")


class NetnsUnavailable(RuntimeError):
    """This host does not let us create a network namespace (not root, no CAP_SYS_ADMIN, a
    container without netns support)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require("ip"), *args], capture_output=True, text=True, timeout=30, check=check
    )


def _addresses_in_use() -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    out = _ip("-4", "-o", "addr", "show", check=False).stdout
    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for line in out.splitlines():
        fields = line.split()
        if "inet" in fields:
            found.add(ipaddress.ip_interface(fields[fields.index("inet") + 1]).ip)
    return found


class NetNs:
    """``with NetNs() as ns:`` a fresh namespace named `name` (``pushsync-<hex>``) with its
    ``lo`` up and a veth pair (`root_veth` in the root namespace, `inner_veth` inside) carrying
    `root_address`/`inner_address` in a /30 of 10.213.0.0/16; everything is removed on exit,
    also when the set-up fails halfway."""

    def __init__(self) -> None:
        tag = secrets.token_hex(4)
        self.name = f"pushsync-{tag}"
        self.root_veth, self.inner_veth = f"psr{tag}", f"psi{tag}"  # at most 15 characters
        in_use = _addresses_in_use()
        while True:
            subnet = ipaddress.ip_network(
                (int(POOL.network_address) + 4 * random.randrange(POOL.num_addresses // 4), 30)
            )
            root, inner = list(subnet.hosts())
            if root not in in_use and inner not in in_use:
                break
        self.subnet = subnet
        self.root_address, self.inner_address = str(root), str(inner)
        self._created = False

    def start(self) -> NetNs:
        add = _ip("netns", "add", self.name, check=False)
        if add.returncode != 0:
            raise NetnsUnavailable(f"ip netns add is not permitted here: {add.stderr.strip()}")
        self._created = True
        try:
            prefix = self.subnet.prefixlen
            for argv in (
                ("-n", self.name, "link", "set", "lo", "up"),
                ("link", "add", self.root_veth, "type", "veth", "peer", "name", self.inner_veth),
                ("link", "set", self.inner_veth, "netns", self.name),
                ("addr", "add", f"{self.root_address}/{prefix}", "dev", self.root_veth),
                ("link", "set", self.root_veth, "up"),
                (
                    "-n",
                    self.name,
                    "addr",
                    "add",
                    f"{self.inner_address}/{prefix}",
                    "dev",
                    self.inner_veth,
                ),
                ("-n", self.name, "link", "set", self.inner_veth, "up"),
            ):
                out = _ip(*argv, check=False)
                if out.returncode != 0:
                    raise RuntimeError(f"ip {' '.join(argv)} failed: {out.stderr.strip()}")
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Delete the namespace (which takes the inner end, hence the pair, with it) and the
        root end if it is still there. Safe to call twice."""
        if self._created:
            _ip("netns", "del", self.name, check=False)
            self._created = False
        if _ip("link", "show", self.root_veth, check=False).returncode == 0:
            _ip("link", "del", self.root_veth, check=False)

    def argv(self, argv: Sequence[str]) -> list[str]:
        """`argv` as run inside the namespace."""
        return [require("ip"), "netns", "exec", self.name, *argv]

    def run(self, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """`subprocess.run` inside the namespace (same keyword arguments)."""
        return subprocess.run(self.argv(argv), **kwargs)

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """`subprocess.Popen` inside the namespace (same keyword arguments)."""
        return subprocess.Popen(self.argv(argv), **kwargs)

    def __enter__(self) -> NetNs:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
