"""The untrusted request in ``SSH_ORIGINAL_COMMAND``: an exact, small vocabulary. Pure."""

import re
from typing import Dict, NamedTuple, Optional

MAX_REQUEST_LENGTH = 1024
VERBS = ("sync", "status", "version")
DATABASES = ("daily", "main", "bytecode")
MAX_DEADLINE = 86_400

_RUN_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")
_DIGITS_RE = re.compile(r"[0-9]{1,9}\Z")
_TOKEN_RE = re.compile(r"[A-Za-z0-9._=-]{1,128}\Z")


class RequestRejected(Exception):
    """The request is not in the vocabulary; nothing may run."""


class Request(NamedTuple):
    verb: str
    run_id: Optional[str]
    expect: Dict[str, int]
    deadline: Optional[int]


def parse_request(command: Optional[str]) -> Request:
    """Given ``SSH_ORIGINAL_COMMAND`` (None when unset), return the Request.

    Unset or empty means ``sync``. Raise RequestRejected for anything outside the vocabulary:
    unknown verbs or options, repeated options, control characters, excessive length.
    """
    if command is None or command == "":
        return Request("sync", None, {}, None)
    if len(command) > MAX_REQUEST_LENGTH:
        raise RequestRejected(f"request longer than {MAX_REQUEST_LENGTH} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in command):
        raise RequestRejected("control character in request")
    tokens = command.split(" ")
    verb = "sync"
    if tokens and tokens[0] in VERBS:
        verb = tokens.pop(0)
    options: Dict[str, str] = {}
    seen = set()
    for tok in tokens:
        if tok == "":
            continue
        if not _TOKEN_RE.match(tok) or "=" not in tok:
            raise RequestRejected(f"unexpected token {_quote(tok)}")
        key, _, value = tok.partition("=")
        if key in seen:
            raise RequestRejected(f"option {key} given twice")
        seen.add(key)
        options[key] = _option(key, value)
    expect = {k[len("expect-") :]: int(v) for k, v in options.items() if k.startswith("expect-")}
    deadline = options.get("deadline")
    return Request(
        verb, options.get("run-id"), expect, int(deadline) if deadline is not None else None
    )


def _option(key: str, value: str) -> str:
    """Return the value of one ``key=value`` option; raise RequestRejected."""
    if key == "run-id":
        if not _RUN_ID_RE.match(value):
            raise RequestRejected("run-id must be 1-64 of [A-Za-z0-9._-]")
    elif key.startswith("expect-") and key[len("expect-") :] in DATABASES:
        if not _DIGITS_RE.match(value):
            raise RequestRejected(f"{key} must be a version number")
    elif key == "deadline":
        if not _DIGITS_RE.match(value) or not 1 <= int(value) <= MAX_DEADLINE:
            raise RequestRejected(f"deadline must be 1..{MAX_DEADLINE} seconds")
    else:
        raise RequestRejected(f"unknown option {_quote(key)}")
    return value


def _quote(text: str) -> str:
    """Return a short, printable rendering of untrusted text for messages."""
    shown = text[:40] + ("..." if len(text) > 40 else "")
    return repr(shown)
