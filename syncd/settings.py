"""``syncd.toml``: where the pusher key, the inventory, the record and the release live, and
each feature's table, composed from the feature's own model (``[policy]`` and ``[[sources]]``:
`syncd.publish.config`; ``[monitor]``, ``[dns]``, ``[announce]``, ``[releases]``: each in its
feature's ``config``). Pure: text in, values out; the caller reads the file it found with
`candidates` (archvsync's order: ``./etc``, ``~/.config``, ``/etc``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from syncd.dns.config import DnsConfig
from syncd.errors import ConfigError
from syncd.hints import did_you_mean
from syncd.monitor.config import MonitorConfig
from syncd.publish.config import Policy, SourceConfig
from syncd.release.config import AnnounceConfig, ReleasesConfig

CONFIG_NAME = "syncd.toml"


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
        more["monitor"] = _monitor_under(base, self.monitor)
        return self.model_copy(update={**changes, **more})


def _under(base: Path, path: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else base / path


BaseModelT = TypeVar("BaseModelT", bound=BaseModel)


def _paths_under(base: Path, model: BaseModelT, fields: tuple[str, ...]) -> BaseModelT:
    """`model` with each of its path `fields` that is set taken relative to `base`."""
    update = {f: _under(base, getattr(model, f)) for f in fields if getattr(model, f) is not None}
    return model.model_copy(update=update)


def _monitor_under(base: Path, monitor: MonitorConfig) -> MonitorConfig:
    """``[monitor]``'s paths (the page, the metrics, the CA files, the SMTP password file)
    relative to `base`, as every path of the file."""
    monitor = _paths_under(base, monitor, ("status_page", "metrics", "https_cafile"))
    if monitor.smtp is not None:
        smtp = _paths_under(base, monitor.smtp, ("password_file", "cafile"))
        monitor = monitor.model_copy(update={"smtp": smtp})
    return monitor


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
