"""The ``[dns]`` table of syncd.toml (and ``[dns.local]``, in `syncd.dns.geopools`). Pure:
validated values, no I/O."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from syncd.dns.geopools import LocalPolicy


class DnsConfig(BaseModel):
    """Where the rotation lives and what the TXT record says besides the versions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    server: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 53
    zone: str = "clamav.net"
    key_name: str
    key_algorithm: str = "hmac-sha256"
    key_secret_file: Path
    ttl: Annotated[int, Field(ge=1, le=86400)] = 300  # the TXT record's
    # the pools' A/AAAA TTL: how long a resolver may hand out a mirror after it left a pool,
    # so how long the TXT waits after a removal before it announces a release
    pool_ttl: Annotated[int, Field(ge=1, le=3600)] = 60
    # the zone's other authoritative servers ("host:port" or "host"): every step waits until
    # each serves the primary's new serial, at most settle_timeout_s
    secondaries: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9.:\[\]-]+$", max_length=300)]] = []
    settle_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    clamav_version: str = "1.4.3"
    version_warning: Annotated[int, Field(ge=0, le=1)] = 0
    safebrowsing: Annotated[int, Field(ge=0)] = 0
    default_pool: list[str] = []
    fallback_count: Annotated[int, Field(ge=1, le=50)] = 3
    gate_share: Annotated[float, Field(gt=0, le=1)] = 0.9
    local: LocalPolicy | None = None  # [dns.local]: db.local by region (BIND views)

    @field_validator("secondaries")
    @classmethod
    def _secondaries(cls, v: list[str]) -> list[str]:
        for text in v:
            port = text.rpartition("]")[2] if text.startswith("[") else text
            port = port.rpartition(":")[2] if port.count(":") == 1 else "53"
            if not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(f"secondary {text!r}: write host:port with a port 1-65535")
        return v

    def secondary_servers(self) -> list[tuple[str, int]]:
        """`secondaries` as (host, port), port 53 unless given (``[v6]:port`` for IPv6)."""
        out = []
        for text in self.secondaries:
            host, sep, port = text.rpartition(":")
            if text.startswith("["):
                host, _, rest = text[1:].partition("]")
                port = rest.removeprefix(":") or "53"
            elif not sep or ":" in host:  # a bare name, or a bare IPv6 address
                host, port = text, "53"
            out.append((host, int(port)))
        return out
