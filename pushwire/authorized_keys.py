"""authorized_keys lines: parse and render, exactly as OpenSSH's sshd(8) reads them. Pure.

A line is ``[options] keytype base64 [comment]``, its parts separated by spaces or tabs. Options
are comma separated, each ``name`` or ``name="value"``; the value may hold commas and spaces.
Inside the quotes sshd knows one escape, ``\\"`` for a quote (``opt_dequote()`` in
auth-options.c); any other backslash is itself. So ``render`` escapes quotes only, and refuses a
value that sshd could not read back: one ending in a backslash (sshd would take the closing
quote for an escaped one) or holding a control character. ``parse_line(render(key)) == key``
for every key ``render`` accepts.
"""

import re
from typing import NamedTuple, Optional, Tuple

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
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}\Z")
_OPTION_NAME = re.compile(r"[A-Za-z0-9-]+")
_OPTION_NAME_ONLY = re.compile(r"[A-Za-z0-9-]+\Z")
_BLANKS = re.compile(r"[ \t]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

Options = Tuple[Tuple[str, Optional[str]], ...]


class AuthorizedKeysError(ValueError):
    """A line sshd would not accept (or a key no line can express); the message says which part."""


class AuthorizedKey(NamedTuple):
    options: Options  # (name, value) in order; value None for a flag such as ``restrict``
    key_type: str
    blob: str  # the base64 key
    comment: str = ""

    @property
    def public_key(self) -> str:
        """``keytype base64``: the key itself, without options or comment."""
        return f"{self.key_type} {self.blob}"

    def option(self, name: str) -> Optional[str]:
        """Return the value of option ``name`` ("" for a flag); None when absent."""
        for key, value in self.options:
            if key.lower() == name.lower():
                return "" if value is None else value
        return None


def _value(text: str, i: int, name: str) -> Tuple[str, int]:
    """Read the quoted value starting after its opening quote at ``i``, as sshd does."""
    chars = []
    while True:
        if i >= len(text):
            raise AuthorizedKeysError(f"option {name} has an unterminated quote")
        c = text[i]
        if c == "\\" and text[i + 1 : i + 2] == '"':
            chars.append('"')
            i += 2
        elif c == '"':
            return "".join(chars), i + 1
        else:
            chars.append(c)
            i += 1


def _options(text: str) -> Tuple[Options, str]:
    """Parse the options at the start of ``text``; return them and the rest of the line."""
    options = []
    i = 0
    while True:
        m = _OPTION_NAME.match(text, i)
        if not m:
            raise AuthorizedKeysError(f"bad option at column {i + 1}")
        name, i = m.group(0), m.end()
        value: Optional[str] = None
        if text[i : i + 2] == '="':
            value, i = _value(text, i + 2, name)
        elif text[i : i + 1] == "=":
            raise AuthorizedKeysError(f"option {name}= needs a double-quoted value")
        options.append((name, value))
        if text[i : i + 1] == ",":
            i += 1
        elif text[i : i + 1] in (" ", "\t"):
            return tuple(options), text[i:].lstrip(" \t")
        else:
            raise AuthorizedKeysError("options must be followed by a key")


def parse_line(line: str) -> Optional[AuthorizedKey]:
    """Given one line (its line break may be left on), return the key; None for a blank or
    comment line; raise AuthorizedKeysError for anything else sshd would not accept."""
    text = line.rstrip("\r\n").strip(" \t")
    if _CONTROL.search(text):
        raise AuthorizedKeysError("control characters (a line break?) inside the line")
    if not text or text.startswith("#"):
        return None
    options: Options = ()
    if _BLANKS.split(text, 1)[0] not in KEY_TYPES:
        options, text = _options(text)
    fields = _BLANKS.split(text, 2)
    if len(fields) < 2 or fields[0] not in KEY_TYPES:
        raise AuthorizedKeysError("no known key type (ssh-ed25519, ssh-rsa, ecdsa-...) found")
    if not _BASE64.match(fields[1]):
        raise AuthorizedKeysError(f"the {fields[0]} key is not base64")
    return AuthorizedKey(options, fields[0], fields[1], fields[2] if len(fields) > 2 else "")


def _quote(name: str, value: str) -> str:
    if _CONTROL.search(value):
        raise AuthorizedKeysError(f"option {name}: a value cannot hold a control character")
    if value.endswith("\\"):
        raise AuthorizedKeysError(
            f'option {name}: a value cannot end in a backslash (sshd would read \\" as a quote)'
        )
    return '"' + value.replace('"', '\\"') + '"'


def render(key: AuthorizedKey) -> str:
    """Return the one-line text of ``key`` (without the line break); raise AuthorizedKeysError
    when no line sshd reads as ``key`` exists."""
    for name, _ in key.options:
        if not _OPTION_NAME_ONLY.match(name):
            raise AuthorizedKeysError(f"option name {name[:40]!r}: letters, digits and '-'")
    opts = ",".join(n if v is None else f"{n}={_quote(n, v)}" for n, v in key.options)
    if opts and _BLANKS.split(opts, 1)[0] in KEY_TYPES:
        raise AuthorizedKeysError(f"an option named {opts!r} would be read as the key type")
    if key.key_type not in KEY_TYPES or not _BASE64.match(key.blob):
        raise AuthorizedKeysError(f"not a known key type with a base64 key: {key.key_type!r}")
    comment = key.comment
    if _CONTROL.search(comment) or comment != comment.strip(" \t"):
        raise AuthorizedKeysError("a comment has no control characters nor surrounding blanks")
    return " ".join([opts] * bool(opts) + [key.public_key] + [comment] * bool(comment))


def parse_public_key(text: str) -> Tuple[str, str, str]:
    """Parse ``keytype base64 [comment]`` (no options); return its three parts."""
    key = parse_line(text)
    if key is None or key.options:
        raise AuthorizedKeysError("expected a bare public key: 'ssh-ed25519 AAAA... comment'")
    return key.key_type, key.blob, key.comment


def fingerprint(public_key: str) -> str:
    """Return OpenSSH's SHA256 fingerprint (``SHA256:...``) of ``keytype base64 [comment]``."""
    import base64
    import hashlib

    _, blob, _ = parse_public_key(public_key)
    digest = hashlib.sha256(base64.b64decode(blob)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
