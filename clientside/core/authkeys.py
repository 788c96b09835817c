"""authorized_keys for ``clam-clientsync setup``: which signed pusher lines we install, and the
merge with what the account has. Pure: bytes in, bytes out.

The line grammar is sshd's (``pushwire.authorized_keys``); the forced command's shape is the key
file's (``pushwire.keyfile``). Setup is stricter than the grammar: a pusher line carries only
restrictions, and its forced command runs the client, nothing else.
"""

import re
from typing import FrozenSet, List, NamedTuple, Optional, Tuple

from pushwire.authorized_keys import AuthorizedKey, parse_line, render
from pushwire.keyfile import CLIENT_NAME, forced_command, parse_forced_command

# What a pusher line may carry besides restrict/command: only further restrictions.
ALLOWED_OPTIONS = frozenset(
    {
        "restrict",
        "command",
        "from",
        "no-pty",
        "no-port-forwarding",
        "no-agent-forwarding",
        "no-x11-forwarding",
        "no-user-rc",
    }
)
MARKER = b"# pushsync: the lines below are managed by 'clam-clientsync setup'\n"
_LINES = re.compile(rb"[^\n]*\n|[^\n]+\Z")


class KeyFileError(ValueError):
    """The pusher key file is not one we install; the message names the line and the reason."""


class PusherLine(NamedTuple):
    """One line of the signed key file, validated: a key allowed to run the client only."""

    line: AuthorizedKey
    program: str  # the client path the signed file names
    source: str  # the one argument of the forced command


def parse_key_file(data: bytes) -> List[PusherLine]:
    """Given the signed key file's bytes, return its pusher lines; raise KeyFileError unless
    every key is restricted (``restrict``) to a forced ``command="/abs/client SOURCE"``."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise KeyFileError("the key file is not ASCII text") from None
    found: List[PusherLine] = []
    for number, raw in enumerate(text.split("\n"), 1):
        try:
            line = parse_line(raw)
        except ValueError as exc:
            raise KeyFileError(f"line {number}: {exc}") from None
        if line is not None:
            found.append(_pusher(line, number))
    if not found:
        raise KeyFileError("the key file holds no key")
    return found


def _pusher(line: AuthorizedKey, number: int) -> PusherLine:
    names = [n.lower() for n, _ in line.options]
    where = f"line {number} ({line.comment or line.key_type})"
    if len(set(names)) != len(names):
        raise KeyFileError(f"{where}: an option is repeated")
    extra = sorted(set(names) - ALLOWED_OPTIONS)
    if extra:
        raise KeyFileError(f"{where}: option {extra[0]} is not a restriction we accept")
    command = line.option("command")
    if not command:
        raise KeyFileError(f"{where}: no forced command: it would allow a shell")
    if line.option("restrict") != "":
        raise KeyFileError(f"{where}: not restricted (no 'restrict' option)")
    forced = parse_forced_command(command)
    if forced is None or not forced[0].rsplit("/", 1)[-1].startswith(CLIENT_NAME):
        raise KeyFileError(
            f"{where}: forced command {command[:120]!r} "
            f"is not '/ABSOLUTE/PATH/{CLIENT_NAME} SOURCE'"
        )
    return PusherLine(line, *forced)


def with_client(pusher: PusherLine, client: str) -> AuthorizedKey:
    """Return the pusher's line with its forced command running ``client`` (absolute path)."""
    try:
        command = forced_command(client, pusher.source)
    except ValueError:
        raise KeyFileError(f"client path {client!r}: absolute, without spaces or quotes") from None
    opts = tuple((n, command if n.lower() == "command" else v) for n, v in pusher.line.options)
    return pusher.line._replace(options=opts)


def is_ours(raw: bytes, pusher_blobs: FrozenSet[str]) -> bool:
    """Given one line of an existing authorized_keys, return whether setup manages it: our
    marker, a pusher key, or a key whose forced command runs the client (the legacy line)."""
    if raw.strip() == MARKER.strip():
        return True
    try:
        line = parse_line(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return False  # not ours to judge: kept as it is
    if line is None:
        return False
    if line.blob in pusher_blobs:
        return True
    command = line.option("command") or ""
    return any(w.rsplit("/", 1)[-1].startswith(CLIENT_NAME) for w in command.split())


def merge(existing: Optional[bytes], ours: List[AuthorizedKey]) -> Tuple[bytes, int, int]:
    """Given the current authorized_keys (None: absent) and our lines, return the new content,
    how many foreign lines were kept (byte for byte, in order) and how many of ours replaced."""
    blobs = frozenset(line.blob for line in ours)
    kept: List[bytes] = []
    replaced = 0
    for raw in _LINES.findall(existing or b""):
        if is_ours(raw, blobs):
            replaced += 1 if raw.strip() != MARKER.strip() else 0
        else:
            kept.append(raw if raw.endswith(b"\n") else raw + b"\n")
    block = MARKER + b"".join(render(line).encode("ascii") + b"\n" for line in ours)
    foreign = sum(1 for raw in kept if raw.strip())
    return b"".join(kept) + block, foreign, replaced
