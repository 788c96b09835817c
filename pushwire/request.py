"""The request line syncd sends and the client reads as ``SSH_ORIGINAL_COMMAND``. Pure.

``[VERB] [key=value ...]``: the verb is ``sync`` (also when none is given), ``status`` or
``version``; the options are ``run-id=[A-Za-z0-9._-]{1,64}``, ``expect-<db>=<version>`` for
``main``, ``daily`` and ``bytecode``, ``deadline=<seconds>`` (1..86400), and, for a push
through a hub (a mirror serving the release to others: a second wave), ``source=<name>`` (one
of the client's ``HUBS``) with ``md5-<db>=<32 hex digits>``, the release's CVD digests that
pin what the hub may hand over. Anything else is rejected, so that nothing outside this
grammar ever runs on a mirror.
"""

import re
from typing import Dict, Mapping, NamedTuple, Optional

from pushwire.cvd import DATABASES

VERBS = ("sync", "status", "version")
MAX_REQUEST_LENGTH = 1024
MAX_DEADLINE = 86_400  # seconds: the longest wait a request may ask for
MAX_VERSION = 999_999_999
RUN_ID_PATTERN = r"[A-Za-z0-9._-]{1,64}"
SOURCE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"

_RUN_ID = re.compile(RUN_ID_PATTERN + r"\Z")
_SOURCE = re.compile(SOURCE_PATTERN + r"\Z")
_DIGITS = re.compile(r"[0-9]{1,9}\Z")
_MD5 = re.compile(r"[0-9a-f]{32}\Z")
_TOKEN = re.compile(r"[A-Za-z0-9._=-]{1,128}\Z")


class RequestError(ValueError):
    """A request outside the grammar: rejected when read, refused when written. Nothing runs."""


class Request(NamedTuple):
    verb: str
    run_id: Optional[str]
    expect: Dict[str, int]  # database -> the version the mirror must serve at least
    deadline: Optional[int]  # seconds
    source: Optional[str] = None  # a hub of the client's HUBS to pull from first
    pins: Mapping[str, str] = {}  # database -> the release's CVD md5 (with `source`)


def check_run_id(run_id: str) -> str:
    """Return ``run_id``; raise RequestError unless it matches the run-id pattern."""
    if not _RUN_ID.match(run_id):
        raise RequestError(f"run id {run_id[:80]!r} must match {RUN_ID_PATTERN}")
    return run_id


def render_request(
    verb: str,
    run_id: Optional[str] = None,
    expected: Optional[Mapping[str, int]] = None,
    deadline: Optional[float] = None,
    *,
    source: Optional[str] = None,
    pins: Optional[Mapping[str, str]] = None,
) -> str:
    """Return the request line, e.g. ``sync run-id=R expect-daily=28034 deadline=900``.

    ``deadline`` (seconds, bounded to 1..MAX_DEADLINE) is how long the sender waits for the
    answer: the client stops its rsync by then on its own, since sshd cannot signal a forced
    command for the sender. ``source`` names a hub to pull from first, and ``pins`` (database
    -> md5, required with it) what its CVDs must be. Raise RequestError for what the client
    would reject."""
    if verb not in VERBS:
        raise RequestError(f"unknown verb {verb!r}")
    tokens = [verb]
    if run_id is not None:
        tokens.append(f"run-id={check_run_id(run_id)}")
    for db, version in sorted((expected or {}).items()):
        if db not in DATABASES or not 0 <= version <= MAX_VERSION:
            raise RequestError(f"cannot expect {db}={version}")
        tokens.append(f"expect-{db}={int(version)}")
    if deadline is not None:
        tokens.append(f"deadline={min(MAX_DEADLINE, max(1, int(deadline)))}")
    if source is not None:
        if not _SOURCE.match(source):
            raise RequestError(f"source {source[:80]!r} must match {SOURCE_PATTERN}")
        tokens.append(f"source={source}")
    for db, digest in sorted((pins or {}).items()):
        if db not in DATABASES or not _MD5.match(digest):
            raise RequestError(f"cannot pin {db} to {digest[:40]!r}")
        tokens.append(f"md5-{db}={digest}")
    _check_hub(source, pins or {})
    return " ".join(tokens)


def _check_hub(source: Optional[str], pins: Mapping[str, str]) -> None:
    """A hub is another mirror: what it hands over is pinned, database by database."""
    if source is not None and not pins:
        raise RequestError("source= needs md5-<db>= pins (a hub's files must be the release's)")
    if pins and source is None:
        raise RequestError("md5-<db>= pins are only for a push through a hub (source=)")


def parse_request(command: Optional[str]) -> Request:
    """Given ``SSH_ORIGINAL_COMMAND`` (None when unset), return the Request.

    Unset or empty means ``sync``. Raise RequestError for anything outside the grammar:
    unknown verbs or options, repeated options, control characters, excessive length.
    """
    if command is None or command == "":
        return Request("sync", None, {}, None)
    if len(command) > MAX_REQUEST_LENGTH:
        raise RequestError(f"request longer than {MAX_REQUEST_LENGTH} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in command):
        raise RequestError("control character in request")
    tokens = command.split(" ")
    verb = "sync"
    if tokens and tokens[0] in VERBS:
        verb = tokens.pop(0)
    options: Dict[str, str] = {}
    for tok in tokens:
        if tok == "":
            continue
        if not _TOKEN.match(tok) or "=" not in tok:
            raise RequestError(f"unexpected token {_shown(tok)}")
        key, _, value = tok.partition("=")
        if key in options:
            raise RequestError(f"option {key} given twice")
        options[key] = _option(key, value)
    expect = {k[len("expect-") :]: int(v) for k, v in options.items() if k.startswith("expect-")}
    pins = {k[len("md5-") :]: v for k, v in options.items() if k.startswith("md5-")}
    deadline = options.get("deadline")
    source = options.get("source")
    _check_hub(source, pins)
    return Request(
        verb,
        options.get("run-id"),
        expect,
        int(deadline) if deadline is not None else None,
        source,
        pins,
    )


def _option(key: str, value: str) -> str:
    """Return the value of one ``key=value`` option; raise RequestError."""
    if key == "run-id":
        if not _RUN_ID.match(value):
            raise RequestError("run-id must be 1-64 of [A-Za-z0-9._-]")
    elif key.startswith("expect-") and key[len("expect-") :] in DATABASES:
        if not _DIGITS.match(value):
            raise RequestError(f"{key} must be a version number")
    elif key == "deadline":
        if not _DIGITS.match(value) or not 1 <= int(value) <= MAX_DEADLINE:
            raise RequestError(f"deadline must be 1..{MAX_DEADLINE} seconds")
    elif key == "source":
        if not _SOURCE.match(value):
            raise RequestError(f"source must match {SOURCE_PATTERN}")
    elif key.startswith("md5-") and key[len("md5-") :] in DATABASES:
        if not _MD5.match(value):
            raise RequestError(f"{key} must be 32 lowercase hex digits")
    else:
        raise RequestError(f"unknown option {_shown(key)}")
    return value


def _shown(text: str) -> str:
    """Return a short, printable rendering of untrusted text for messages."""
    return repr(text[:40] + ("..." if len(text) > 40 else ""))
