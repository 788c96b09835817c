"""``syncd.toml``: where the pusher key, the inventory, the record and the release live, and the
publishing policy (concurrency, deadlines, retries). Pure: text in, values out; the caller reads
the file it found with `candidates` (archvsync's order: ``./etc``, ``~/.config``, ``/etc``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from pushwire.keyfile import is_source
from syncd.dns.config import DnsConfig
from syncd.errors import ConfigError
from syncd.hints import did_you_mean
from syncd.monitor.config import MonitorConfig
from syncd.publish.sources import SourceSpec
from syncd.release.config import AnnounceConfig, ReleasesConfig

CONFIG_NAME = "syncd.toml"

Seconds = Annotated[float, Field(gt=0, le=86400)]


class Policy(BaseModel):
    """How hard to push. The defaults come from the sweeps in benchmarks/README.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    handshake_concurrency: Annotated[int, Field(ge=1, le=2000)] = 500
    session_concurrency: Annotated[int, Field(ge=1, le=20000)] = 1000
    connect_timeout: Seconds = 15.0
    login_timeout: Seconds = 30.0
    command_timeout: Seconds = 900.0
    run_timeout: Seconds = 1800.0
    keepalive_interval: Seconds = 15.0
    keepalive_count_max: Annotated[int, Field(ge=1, le=100)] = 4
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    backoff_initial: Seconds = 1.0
    backoff_max: Seconds = 60.0
    poll_initial: Seconds = 1.0
    poll_max: Seconds = 60.0
    output_limit: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    http_timeout: Seconds = 20.0  # each HTTP read, connect or write
    # the whole HTTP proof of one mirror (every request, every address family): a mirror that
    # trickles its answer fails its proof then, and never holds the summary or DNS longer
    proof_timeout: Seconds = 60.0
    http_check: bool = True
    # the daily cdiffs a release carries (Cisco's cvdupdate keeps 30): fewer in the source tree
    # is warned about, since users further behind then download the whole daily.cvd
    cdiff_history: Annotated[int, Field(ge=0, le=1000)] = 30
    # where asyncssh's asyncio code runs: a worker thread (measured 1.16x plain asyncio's CPU)
    # or trio-asyncio (2.0x); see benchmarks/README.md
    ssh_loop: Literal["thread", "trio-asyncio"] = "thread"
    # with [[sources]]: measured transfers per source in the record before their rates, not
    # the configured weights, split the mirrors (0: weights only)
    source_learn_after: Annotated[int, Field(ge=0, le=100_000)] = 20
    # with hubs (a `hub` table in the inventory): how long a second-wave mirror waits for its
    # hub's push to end before it is pushed from its source instead
    hub_wait: Seconds = 120.0

    @model_validator(mode="after")
    def _order(self) -> Policy:
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must not be smaller than backoff_initial")
        if self.poll_max < self.poll_initial:
            raise ValueError("poll_max must not be smaller than poll_initial")
        return self


class SourceConfig(BaseModel):
    """One ``[[sources]]`` entry: a source, the pusher key whose forced command syncs from it,
    its share of the mirrors and how many transfers it serves at once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    key: Path
    weight: Annotated[int, Field(ge=1, le=1000)] = 1
    max_transfers: Annotated[int, Field(ge=1, le=20000)] = 50

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not is_source(v):
            raise ValueError("a host name such as rsync1.clamav.net")
        return v

    def spec(self) -> SourceSpec:
        return SourceSpec(self.name, self.weight, self.max_transfers)


class SyncdConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Path | None = None
    inventory: Path | None = None
    state: Path | None = None
    source_tree: Path | None = None
    source: str | None = None  # the source the pusher key's forced command syncs from
    policy: Policy = Policy()
    monitor: MonitorConfig = MonitorConfig()
    dns: DnsConfig | None = None
    sources: list[SourceConfig] = []  # empty: the one `key`, as before
    announce: AnnounceConfig | None = None  # each release mailed to a list once announced
    releases: ReleasesConfig = ReleasesConfig()
    _origin: Path | None = PrivateAttr(default=None)  # the file it was read from

    @property
    def origin(self) -> Path | None:
        """The syncd.toml this configuration was read from (None: the defaults, none found)."""
        return self._origin

    @model_validator(mode="after")
    def _unique_sources(self) -> SyncdConfig:
        names = [s.name for s in self.sources]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"source {twice[0]} is listed twice in [[sources]]")
        return self

    def resolved(self, base: Path) -> SyncdConfig:
        """Return a copy with relative paths taken relative to `base` (the file's directory)."""
        changes: dict[str, Path] = {}
        for field in ("key", "inventory", "state", "source_tree"):
            value = getattr(self, field)
            if value is not None:
                value = value.expanduser()
                changes[field] = value if value.is_absolute() else base / value
        sources = [s.model_copy(update={"key": _under(base, s.key)}) for s in self.sources]
        more: dict[str, object] = {"sources": sources}
        if self.dns is not None:  # the TSIG secret, as every other path of the file
            secret = _under(base, self.dns.key_secret_file)
            more["dns"] = self.dns.model_copy(update={"key_secret_file": secret})
        return self.model_copy(update={**changes, **more})


def _under(base: Path, path: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else base / path


FIXES = {
    "key": "the path of the pusher's private key",
    "inventory": "the path of the mirrors' inventory TOML",
    "state": "the path of the SQLite record",
    "source_tree": "the directory holding the release's daily.cvd, main.cvd and bytecode.cvd",
    "source": "a source name such as rsync1.clamav.net",
    "monitor.team": 'a list of addresses such as ["mirrors-team@example.org"]',
    "monitor.smtp.sender": "one address such as mirror-monitor@example.org",
    "monitor.smtp.host": "the mail server's host name or address",
    "policy.proof_timeout": "seconds (default 60) for one mirror's whole HTTP proof",
    "announce.to": "the list's address, such as clamav-virusdb@lists.example.org",
    "announce.sender": "one address such as clamav-db@example.org",
    "releases.t90_limit_h": "hours (default 2) a release may take to reach 90 % of the mirrors",
}


def parse_config(text: str, origin: str = CONFIG_NAME) -> SyncdConfig:
    """Given syncd.toml's text, return it (paths relative to its directory); raise ConfigError."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{origin}: not valid TOML: {err}") from None
    try:
        config = SyncdConfig.model_validate(raw)
    except ValidationError as err:
        errors = err.errors()
        # an unknown key first: a misspelt key also makes the real one "missing"
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        if first["type"] == "extra_forbidden":
            name = str(first["loc"][-1])
            hint = did_you_mean(name, _known_keys(SyncdConfig, first["loc"][:-1]))
            todo = f"{hint}rename or remove it" if hint else "remove it"
            raise ConfigError(f"{origin}: unknown key {field!r}: {todo}") from None
        message = first["msg"].removeprefix("Value error, ")
        fix = FIXES.get(field)
        table = "[[sources]]" if field.startswith("sources") else "the [policy] table"
        hint = f"use {fix}" if fix else f"see {table} in docs/publishing.md"
        raise ConfigError(f"{origin}: field {field!r}: {message}: {hint}") from None
    return config.resolved(Path(origin).parent)


def _known_keys(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The keys the table at `loc` (below `model`) accepts; [] when that is not a table."""
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        inner = _model_in(field.annotation) if field is not None else None
        if inner is None:
            return []
        model = inner
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def candidates(cwd: Path, home: Path) -> list[Path]:
    """Return where syncd.toml is looked for, in order: ./etc, ~/.config/syncd, /etc/syncd."""
    return [
        cwd / "etc" / CONFIG_NAME,
        home / ".config" / "syncd" / CONFIG_NAME,
        Path("/etc/syncd") / CONFIG_NAME,
    ]
