"""authorized_keys lines for ``clam-clientsync setup``: the signed pusher file and the merge.

Pure: bytes in, bytes out. A line is ``[options] keytype base64 [comment]`` as sshd(8) reads it;
options are comma separated, ``name`` or ``name="value"`` (``\\"`` stands for a quote).
"""

import re
from typing import FrozenSet, List, NamedTuple, Optional, Tuple

KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
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
CLIENT_NAME = "clam-clientsync"
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}\Z")
_OPTION_NAME = re.compile(r"[A-Za-z0-9-]+")
_SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}\Z")
_PROGRAM = re.compile(r"/[A-Za-z0-9._/+-]+\Z")
_LINES = re.compile(rb"[^\n]*\n|[^\n]+\Z")

Options = Tuple[Tuple[str, Optional[str]], ...]


class KeyFileError(ValueError):
    """The pusher key file is not one we install; the message names the line and the reason."""


class Line(NamedTuple):
    options: Options
    key_type: str
    blob: str
    comment: str

    def option(self, name: str) -> Optional[str]:
        """Return the value of option ``name`` ("" for a flag); None when absent."""
        for key, value in self.options:
            if key.lower() == name.lower():
                return "" if value is None else value
        return None


class PusherLine(NamedTuple):
    """One line of the signed key file, validated: a key allowed to run the client only."""

    line: Line
    program: str  # the client path the signed file names
    source: str  # the one argument of the forced command


def _value(text: str, i: int, name: str) -> Tuple[str, int]:
    chars: List[str] = []
    while True:
        if i >= len(text):
            raise ValueError(f"option {name} has an unterminated quote")
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] == '"':
            chars.append('"')
            i += 2
        elif c == '"':
            return "".join(chars), i + 1
        else:
            chars.append(c)
            i += 1


def _options(text: str) -> Tuple[Options, str]:
    options: List[Tuple[str, Optional[str]]] = []
    i = 0
    while True:
        m = _OPTION_NAME.match(text, i)
        if not m:
            raise ValueError(f"bad option at column {i + 1}")
        name, i = m.group(0), m.end()
        value: Optional[str] = None
        if text[i : i + 2] == '="':
            value, i = _value(text, i + 2, name)
        elif text[i : i + 1] == "=":
            raise ValueError(f"option {name}= needs a double-quoted value")
        options.append((name, value))
        if text[i : i + 1] == ",":
            i += 1
        elif text[i : i + 1] in (" ", "\t"):
            return tuple(options), text[i:].lstrip(" \t")
        else:
            raise ValueError("options must be followed by a key")


def parse_line(text: str) -> Optional[Line]:
    """Given one line of text, return it parsed; None for blank or comment; raise ValueError."""
    text = text.rstrip("\r\n").strip(" \t")
    if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in text):
        raise ValueError("control characters inside the line")
    if not text or text.startswith("#"):
        return None
    options: Options = ()
    if text.split(None, 1)[0] not in KEY_TYPES:
        options, text = _options(text)
    fields = text.split(None, 2)
    if len(fields) < 2 or fields[0] not in KEY_TYPES:
        raise ValueError("no known key type (ssh-ed25519, ssh-rsa, ecdsa-...) found")
    if not _BASE64.match(fields[1]):
        raise ValueError(f"the {fields[0]} key is not base64")
    return Line(options, fields[0], fields[1], fields[2] if len(fields) > 2 else "")


def _quote(value: str) -> str:
    return '"' + value.replace('"', '\\"') + '"'


def render(line: Line) -> str:
    """Return ``line`` as one authorized_keys line (without the newline)."""
    opts = ",".join(n if v is None else f"{n}={_quote(v)}" for n, v in line.options)
    parts = [opts] if opts else []
    parts += [line.key_type, line.blob] + ([line.comment] if line.comment else [])
    return " ".join(parts)


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


def _pusher(line: Line, number: int) -> PusherLine:
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
    words = command.split(" ")
    if (
        len(words) != 2
        or not _PROGRAM.match(words[0])
        or not words[0].rsplit("/", 1)[-1].startswith(CLIENT_NAME)
        or "/../" in words[0] + "/"
        or not _SOURCE.match(words[1])
    ):
        raise KeyFileError(
            f"{where}: forced command {command[:120]!r} "
            f"is not '/ABSOLUTE/PATH/{CLIENT_NAME} SOURCE'"
        )
    return PusherLine(line, words[0], words[1])


def with_client(pusher: PusherLine, client: str) -> Line:
    """Return the pusher's line with its forced command running ``client`` (absolute path)."""
    if not _PROGRAM.match(client) or "/../" in client + "/":
        raise KeyFileError(f"client path {client!r}: absolute, without spaces or quotes")
    command = f"{client} {pusher.source}"
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


def merge(existing: Optional[bytes], ours: List[Line]) -> Tuple[bytes, int, int]:
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
