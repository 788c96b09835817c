"""The legacy ``KEY=VALUE`` config of clam-clientsync, read without any shell.

Pure: :func:`parse_config_text` takes the file's text, :func:`build_config` turns the pairs into a
validated :class:`Config`. Nothing here touches the filesystem; path checks live in ``paths``.
"""

import re
from typing import Dict, List, NamedTuple, Optional, Tuple

from clientside.core.pagekeys import PAGE_KEYS, PAGE_NAME, PageSettings, page_settings

KNOWN_KEYS = frozenset(
    {
        "TO",
        "RSYNC_USER",
        "RSYNC_PASSWORD",
        "MODULE",
        "EXCLUDE",
        "SOURCES",
        "HUBS",
        "STATE_DIR",
        "LOG_FILE",
        "MAX_DELETE",
        "TIMEOUT",
        "CONTIMEOUT",
        "DEADLINE",
        "MAX_ROUNDS",
        "RSYNC",
        *PAGE_KEYS,
        "ACCESS_LOG",
    }
)

# the project's two rsync servers: the sources of a config without SOURCES
DEFAULT_SOURCES = ("rsync1.clamav.net", "rsync2.clamav.net")

_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
_HOST_RE = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])\Z")
_URL_RE = re.compile(
    r"rsync://(?P<host>[A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:.]{2,45}\])"
    r"(?::(?P<port>[0-9]{1,5}))?/?\Z"
)
_HUB_URL_RE = re.compile(
    r"rsync://(?P<host>[A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:.]{2,45}\])"
    r"(?::(?P<port>[0-9]{1,5}))?(?:/(?P<module>[A-Za-z0-9][A-Za-z0-9._-]{0,127}))?/?\Z"
)
_PATTERN_RE = re.compile(r"[A-Za-z0-9._*?/\[\]-]{1,200}\Z")
_SHELL_UNSAFE_UNQUOTED = set(";&|<>()`$\\\"'{}!")

INT_LIMITS: Dict[str, Tuple[int, int, int]] = {
    # key: (default, minimum, maximum)
    "MAX_DELETE": (100, 0, 100_000),
    "TIMEOUT": (180, 1, 3600),
    "CONTIMEOUT": (30, 1, 600),
    "DEADLINE": (900, 1, 86_400),
    "MAX_ROUNDS": (3, 1, 20),
}


class ConfigError(Exception):
    """The config cannot be used; the message is one line naming the problem."""


class Source(NamedTuple):
    name: str
    host: str
    port: Optional[int]
    # a hub (HUBS): another mirror serving the release to a second wave; it gets no
    # RSYNC_USER or RSYNC_PASSWORD, and its module is its own (default MODULE)
    hub: bool = False
    module: Optional[str] = None


class Config(NamedTuple):
    to: str
    module: str
    rsync_user: Optional[str]
    rsync_password: Optional[str]
    sources: Tuple[Source, ...]
    hubs: Tuple[Source, ...]
    protect_patterns: Tuple[str, ...]
    state_dir: str
    log_file: str
    max_delete: int
    timeout: int
    contimeout: int
    deadline: int
    max_rounds: int
    rsync: Optional[str]
    warnings: Tuple[str, ...]
    page: PageSettings = PageSettings()  # the home page's keys (``core.pagekeys``)
    # the web server's access log (combined, or combinedrealsize), counted in each sync's report
    access_log: Optional[str] = None


def _read_value(text: str, lineno: int) -> str:
    """Given the text after ``KEY=``, return the value a POSIX shell would assign.

    Raise ConfigError for anything a shell would expand or execute.
    """
    out: List[str] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c in " \t":
            rest = text[i:].strip()
            if rest and not rest.startswith("#"):
                # the value is not echoed: it may be a password
                raise ConfigError(f"line {lineno}: unquoted space in the value; quote the value")
            break
        if c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise ConfigError(f"line {lineno}: unterminated single quote")
            out.append(text[i + 1 : end])
            i = end + 1
            continue
        if c == '"':
            i = _double_quoted(text, i + 1, lineno, out)
            continue
        if c in "$`":
            raise ConfigError(
                f"line {lineno}: shell expansion ({c!r}) is not supported; write the literal value"
            )
        if c in _SHELL_UNSAFE_UNQUOTED:
            raise ConfigError(f"line {lineno}: character {c!r} must be quoted")
        out.append(c)
        i += 1
    return "".join(out)


def _double_quoted(text: str, i: int, lineno: int, out: List[str]) -> int:
    """Append the double-quoted text starting at ``i`` to ``out``; return the index after it."""
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            return i + 1
        if c in "$`":
            raise ConfigError(
                f"line {lineno}: shell expansion ({c!r}) is not supported; write the literal value"
            )
        if c == "\\" and i + 1 < n and text[i + 1] in '"\\$`':
            out.append(text[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    raise ConfigError(f"line {lineno}: unterminated double quote")


def parse_config_text(text: str) -> List[Tuple[int, str, str]]:
    """Given the config text, return ``(line number, key, value)`` in file order.

    Raise ConfigError naming the line for anything that is not a plain assignment.
    """
    pairs: List[Tuple[int, str, str]] = []
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if any(ord(ch) < 32 and ch != "\t" for ch in line) or "\x7f" in line:
            raise ConfigError(f"line {lineno}: control character")
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[len("export") :].strip()
        key, sep, rest = line.partition("=")
        if not sep or not _KEY_RE.match(key):
            raise ConfigError(f"line {lineno}: expected KEY=VALUE")
        pairs.append((lineno, key, _read_value(rest, lineno)))
    return pairs


def parse_exclude(value: str) -> List[str]:
    """Given the legacy ``EXCLUDE`` value (``--exclude PATTERN`` pairs), return the patterns."""
    tokens = value.split()
    patterns: List[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "--exclude" and i + 1 < len(tokens):
            pat = tokens[i + 1]
            i += 2
        elif tok.startswith("--exclude="):
            pat = tok[len("--exclude=") :]
            i += 1
        else:
            raise ConfigError(f"EXCLUDE: only '--exclude PATTERN' pairs are allowed, not {tok!r}")
        if not _PATTERN_RE.match(pat) or pat.startswith("-") or ".." in pat.split("/"):
            raise ConfigError(f"EXCLUDE: unsupported pattern {pat!r}")
        patterns.append(pat)
    return patterns


def _rsync_urls(
    key: str, value: str, url_re: "re.Pattern[str]", form: str, *, taken: List[Source], hub: bool
) -> List[Source]:
    """Given a ``name=URL`` list (``key``, its URLs matching `url_re`, written `form`), return
    one Source (a hub with `hub`) per token in order; a name already in `taken` or given twice
    is an error."""
    out: List[Source] = []
    for tok in value.split():
        name, sep, url = tok.partition("=")
        if not sep or not _NAME_RE.match(name):
            raise ConfigError(f"{key}: expected name={form}, got {tok!r}")
        m = url_re.match(url)
        if not m:
            raise ConfigError(f"{key}: {name}: expected {form}, got {url!r}")
        port = int(m.group("port")) if m.group("port") else None
        if port is not None and not 0 < port < 65536:
            raise ConfigError(f"{key}: {name}: port out of range")
        if any(s.name == name for s in out + taken):
            twice = " (a hub's name is not a source's)" if hub else ""
            raise ConfigError(f"{key}: {name} given twice{twice}")
        module = m.groupdict().get("module")
        out.append(Source(name, m.group("host"), port, hub, module))
    return out


def parse_sources(value: str) -> List[Source]:
    """Given ``SOURCES`` (``name=rsync://host[:port]`` tokens), return the sources in order."""
    sources = _rsync_urls("SOURCES", value, _URL_RE, "rsync://host[:port]", taken=[], hub=False)
    if not sources:
        raise ConfigError("SOURCES: empty")
    return sources


def parse_hubs(value: str, sources: List[Source]) -> List[Source]:
    """Given ``HUBS`` (``name=rsync://host[:port][/module]`` tokens), return the hubs in order:
    mirrors this one may pull from when a push names them (``source=NAME``), never otherwise."""
    return _rsync_urls(
        "HUBS", value, _HUB_URL_RE, "rsync://host[:port][/module]", taken=sources, hub=True
    )


def default_source(name: str) -> Source:
    """Given a source name with no SOURCES entry, return ``rsync://NAME``; raise if unusable."""
    if not _NAME_RE.match(name) or not _HOST_RE.match(name):
        raise ConfigError(f"source name {name!r} is not a host name")
    return Source(name, name, None)


def _int_value(key: str, value: str) -> int:
    _, lo, hi = INT_LIMITS[key]
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise ConfigError(f"{key}: expected a whole number, got {value!r}")
    number = int(value)
    if not lo <= number <= hi:
        raise ConfigError(f"{key}: {number} is outside {lo}..{hi}")
    return number


def _expand_home(key: str, value: str, home: str) -> str:
    if value == "~":
        return home
    if value.startswith("~/"):
        return home.rstrip("/") + value[1:]
    if value.startswith("~"):
        raise ConfigError(
            f"{key}: ~user paths are not supported: {value!r}: write ~/ or a full path"
        )
    return value


def _sources(values: Dict[str, str], requested: Optional[str]) -> List[Source]:
    """SOURCES when set; else both project sources (each ``rsync://NAME``), after the requested
    name when that is another host name, so that a sync falls back to the other source."""
    if "SOURCES" in values:
        return parse_sources(values["SOURCES"])
    defaults = [default_source(name) for name in DEFAULT_SOURCES]
    if requested is None or requested in DEFAULT_SOURCES:
        return defaults
    return [default_source(requested), *defaults]


def build_config(
    pairs: List[Tuple[int, str, str]], *, home: str, requested_source: Optional[str] = None
) -> Config:
    """Given parsed pairs and the home directory, return the validated Config.

    Without SOURCES the sources are ``DEFAULT_SOURCES``, each ``rsync://NAME``, and
    ``requested_source`` (when given and not one of them) as ``rsync://NAME`` before them.
    Raise ConfigError on the first problem.
    """
    values: Dict[str, str] = {}
    warnings: List[str] = []
    for lineno, key, value in pairs:
        if key not in KNOWN_KEYS:
            warnings.append(f"config line {lineno}: unknown key {key} ignored")
            continue
        values[key] = value

    to = _expand_home("TO", values.get("TO", ""), home)
    if not to:
        raise ConfigError("TO is not set")
    if not to.startswith("/"):
        raise ConfigError(f"TO must be an absolute path, got {to!r}")
    module = values.get("MODULE", "clamavdb")
    if not _NAME_RE.match(module):
        raise ConfigError(f"MODULE: unsupported module name {module!r}")
    user = values.get("RSYNC_USER") or None
    if user is not None and not _NAME_RE.match(user):
        raise ConfigError("RSYNC_USER: unsupported characters")
    password = values.get("RSYNC_PASSWORD") or None

    sources = _sources(values, requested_source)
    hubs = parse_hubs(values.get("HUBS", ""), sources)
    # the admin's own files, and the home page the client writes (``core.homepage``)
    patterns = ["/local_*", "/" + PAGE_NAME]
    for pat in parse_exclude(values.get("EXCLUDE", "")):
        if pat not in patterns:
            patterns.append(pat)

    state_dir = _expand_home("STATE_DIR", values.get("STATE_DIR", "~/var/clam-clientsync"), home)
    log_file = _expand_home(
        "LOG_FILE", values.get("LOG_FILE", state_dir + "/clam-clientsync.log"), home
    )
    for key, path in (("STATE_DIR", state_dir), ("LOG_FILE", log_file)):
        if not path.startswith("/"):
            raise ConfigError(f"{key} must be an absolute path, got {path!r}")
    rsync = _expand_home("RSYNC", values["RSYNC"], home) if values.get("RSYNC") else None
    if rsync is not None and not rsync.startswith("/"):
        raise ConfigError(f"RSYNC must be an absolute path, got {rsync!r}")

    access_log = _access_log(values.get("ACCESS_LOG", ""), home, warnings)

    ints = {
        key: _int_value(key, values[key]) if key in values else default
        for key, (default, _, _) in INT_LIMITS.items()
    }
    page, page_warnings = page_settings(values)
    warnings += page_warnings
    return Config(
        to=to.rstrip("/") or "/",
        module=module,
        rsync_user=user,
        rsync_password=password,
        sources=tuple(sources),
        hubs=tuple(hubs),
        protect_patterns=tuple(patterns),
        state_dir=state_dir.rstrip("/") or "/",
        log_file=log_file,
        max_delete=ints["MAX_DELETE"],
        timeout=ints["TIMEOUT"],
        contimeout=ints["CONTIMEOUT"],
        deadline=ints["DEADLINE"],
        max_rounds=ints["MAX_ROUNDS"],
        rsync=rsync,
        warnings=tuple(warnings),
        page=page,
        access_log=access_log,
    )


def _access_log(value: str, home: str, warnings: List[str]) -> Optional[str]:
    """ACCESS_LOG as a full path, or None (unset). A path that cannot be one is a warning, not
    an error: the log is never a reason not to sync."""
    if not value:
        return None
    try:
        path = _expand_home("ACCESS_LOG", value, home)
    except ConfigError as exc:
        warnings.append(f"{exc}; traffic is not counted")
        return None
    if not path.startswith("/") or "\0" in path:
        warnings.append(
            f"ACCESS_LOG must be an absolute path, got {path!r}; traffic is not counted"
        )
        return None
    return path


def order_sources(sources: Tuple[Source, ...], requested: str) -> List[Source]:
    """Given the configured sources and the requested name, return requested first, then others.

    Raise ConfigError when the requested name is not configured.
    """
    first = [s for s in sources if s.name == requested]
    if not first:
        names = ", ".join(s.name for s in sources) or "none"
        raise ConfigError(f"source {requested!r} is not configured (configured: {names})")
    return first + [s for s in sources if s.name != requested]


def hub_first(config: "Config", requested: str, hub: Optional[str]) -> List[Source]:
    """The order of a sync's sources: the hub the push names (one of HUBS) first, then
    ``order_sources``. Raise ConfigError when the hub is not configured: a push may only point
    this mirror at a mirror its admin chose."""
    ordered = order_sources(config.sources, requested)
    if hub is None:
        return ordered
    chosen = [h for h in config.hubs if h.name == hub]
    if not chosen:
        names = ", ".join(h.name for h in config.hubs) or "none"
        raise ConfigError(f"hub {hub!r} is not one of this mirror's HUBS (configured: {names})")
    return chosen + ordered
