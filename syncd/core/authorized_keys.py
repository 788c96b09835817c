"""authorized_keys lines: parse and render, as OpenSSH's sshd(8) reads them.

A line is ``[options] keytype base64 [comment]``; options are comma separated, each ``name`` or
``name="value"`` where the value may hold commas and spaces, and ``\\"`` stands for a quote.
Pure: text in, values out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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


class AuthorizedKeysError(ValueError):
    """A line that sshd would not accept; the message says which part."""


@dataclass(frozen=True)
class AuthorizedKey:
    options: tuple[tuple[str, str | None], ...]
    key_type: str
    blob: str
    comment: str = ""

    @property
    def public_key(self) -> str:
        """``keytype base64``: the key itself, without options or comment."""
        return f"{self.key_type} {self.blob}"

    def option(self, name: str) -> str | None:
        """Return the value of option `name` (``""`` for a flag); None when absent."""
        for key, value in self.options:
            if key.lower() == name.lower():
                return "" if value is None else value
        return None


def _quote(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise AuthorizedKeysError("an option value cannot hold a line break")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(key: AuthorizedKey) -> str:
    """Return the one-line text of `key`."""
    opts = ",".join(
        name if value is None else f"{name}={_quote(value)}" for name, value in key.options
    )
    parts = [opts] if opts else []
    parts.append(key.public_key)
    if key.comment:
        parts.append(key.comment)
    return " ".join(parts)


def _parse_options(text: str) -> tuple[tuple[tuple[str, str | None], ...], str]:
    """Parse the options at the start of `text`; return them and the rest of the line."""
    options: list[tuple[str, str | None]] = []
    i = 0
    while True:
        m = _OPTION_NAME.match(text, i)
        if not m:
            raise AuthorizedKeysError(f"bad option at column {i + 1}")
        name, i = m.group(0), m.end()
        value: str | None = None
        if i < len(text) and text[i] == "=":
            if i + 1 >= len(text) or text[i + 1] != '"':
                raise AuthorizedKeysError(f"option {name}= needs a double-quoted value")
            i += 2
            chars: list[str] = []
            while True:
                if i >= len(text):
                    raise AuthorizedKeysError(f"option {name} has an unterminated quote")
                c = text[i]
                if c == "\\" and i + 1 < len(text) and text[i + 1] == '"':
                    chars.append('"')
                    i += 2
                    continue
                if c == '"':
                    i += 1
                    break
                chars.append(c)
                i += 1
            value = "".join(chars)
        options.append((name, value))
        if i < len(text) and text[i] == ",":
            i += 1
            continue
        if i < len(text) and text[i] in " \t":
            return tuple(options), text[i:].lstrip(" \t")
        raise AuthorizedKeysError("options must be followed by a key")


def parse_line(line: str) -> AuthorizedKey | None:
    """Parse one authorized_keys line; None for a blank or comment line."""
    text = line.removesuffix("\n").strip(" \t")
    if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in text):
        raise AuthorizedKeysError("control characters (a line break?) inside the line")
    if not text or text.startswith("#"):
        return None
    options: tuple[tuple[str, str | None], ...] = ()
    if not text.split():  # only (Unicode) white space: a blank line
        return None
    if text.split(None, 1)[0] not in KEY_TYPES:
        options, text = _parse_options(text)
    fields = text.split(None, 2)
    if len(fields) < 2 or fields[0] not in KEY_TYPES:
        raise AuthorizedKeysError("no known key type (ssh-ed25519, ssh-rsa, ecdsa-...) found")
    if not _BASE64.match(fields[1]):
        raise AuthorizedKeysError(f"the {fields[0]} key is not base64")
    return AuthorizedKey(options, fields[0], fields[1], fields[2] if len(fields) > 2 else "")


def parse_public_key(text: str) -> tuple[str, str, str]:
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
