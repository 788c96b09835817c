"""Locate the external programs the harness starts, failing fast with the fix."""

from __future__ import annotations

import shutil

_PACKAGES = {
    "sshd": "openssh-server",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "rsync": "rsync",
    "nginx": "nginx",
    "sigtool": "clamav",
    "named": "bind9",
    "named-checkconf": "bind9",
    "rndc": "bind9",
    "ip": "iproute2",
    "dig": "bind9-dnsutils",
}


class MissingBinary(RuntimeError):
    pass


def require(name: str) -> str:
    """Return the absolute path of `name`; raise naming the Debian package when missing."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
    if not found:
        pkg = _PACKAGES.get(name, name)
        raise MissingBinary(
            f"{name} not found: install it with 'apt-get install {pkg}' (scripts/setup does this)"
        )
    return found
