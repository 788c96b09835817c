"""The signed pusher key file: what ``syncd keys render`` writes and ``clam-clientsync setup``
installs. Pure.

``authorized_keys_noshell`` holds one restricted line per pusher key whose forced command is
``/ABSOLUTE/PATH/clam-clientsync SOURCE``; ``authorized_keys_noshell.sig`` is an OpenSSH
signature over it (``ssh-keygen -Y sign -n pushsync-keys``) by a principal listed in
``allowed_signers``.
"""

import re
from typing import Optional, Tuple

NAMESPACE = "pushsync-keys"  # of every signature over a key file
NOSHELL = "authorized_keys_noshell"
SHELL = "authorized_keys_shell"
ALLOWED_SIGNERS = "allowed_signers"
SIGNATURE_SUFFIX = ".sig"
DEFAULT_PRINCIPAL = "db-team@clamav.net"
CLIENT_NAME = "clam-clientsync"

_SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}\Z")
_CLIENT_PATH = re.compile(r"/[A-Za-z0-9._/+-]+\Z")


def is_source(name: str) -> bool:
    """Return whether ``name`` may be a forced command's source (a host name)."""
    return bool(_SOURCE.match(name))


def check_source(name: str) -> str:
    """Return ``name`` when it may be a forced command's source; else raise ValueError naming
    the fix (pushers.toml's ``source`` and syncd.toml's ``[[sources]] name`` alike)."""
    if not is_source(name):
        raise ValueError("a host name such as rsync1.clamav.net")
    return name


def is_client_path(path: str) -> bool:
    """Return whether ``path`` may be the client a forced command runs: absolute, no ``..``,
    nothing a shell would split or expand."""
    return bool(_CLIENT_PATH.match(path)) and "/../" not in path + "/"


def forced_command(client: str, source: str) -> str:
    """Return the forced command running ``client`` for ``source``; raise ValueError."""
    if not is_client_path(client):
        raise ValueError(f"client path {client[:120]!r}: absolute, without spaces or quotes")
    if not is_source(source):
        raise ValueError(f"source {source[:120]!r} is not a host name")
    return f"{client} {source}"


def parse_forced_command(command: str) -> Optional[Tuple[str, str]]:
    """Given a forced command, return its (client, source) when it is one ``forced_command``
    writes, else None."""
    words = command.split(" ")
    if len(words) != 2 or not is_client_path(words[0]) or not is_source(words[1]):
        return None
    return words[0], words[1]
