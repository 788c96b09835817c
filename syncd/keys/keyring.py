"""The pusher keys (``keys/pushers.toml``) and the files rendered from them.

``pushers.toml`` is the source of truth: which public keys push, which source each triggers,
which addresses pushes come from, the client's path on mirrors, and who signs the rendered
files. Rendering is pure and deterministic: the same TOML gives the same bytes.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from pushwire.authorized_keys import AuthorizedKey, parse_public_key, render
from pushwire.keyfile import (
    ALLOWED_SIGNERS,
    NAMESPACE,
    NOSHELL,
    SHELL,
    check_source,
    forced_command,
    is_client_path,
)
from syncd.errors import SyncdError

_PRINCIPAL = re.compile(r"[A-Za-z0-9._+@-]{1,128}\Z")
_HEADER = (
    "# pushsync pusher keys: rendered by 'syncd keys render' from keys/pushers.toml, signed.\n"
)


class KeyringError(SyncdError, ValueError):
    """pushers.toml cannot be used; the message names the field and the fix."""


def _public_key(value: str) -> str:
    kind, blob, _ = parse_public_key(value)
    return f"{kind} {blob}"


class PusherKey(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    source: Annotated[
        str, AfterValidator(check_source), Field(description="rsync source this key triggers")
    ]
    public_key: str
    comment: str = ""

    @field_validator("public_key")
    @classmethod
    def _key(cls, v: str) -> str:
        return _public_key(v)


class Signer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    principal: str
    public_key: str

    @field_validator("principal")
    @classmethod
    def _principal(cls, v: str) -> str:
        if not _PRINCIPAL.match(v):
            raise ValueError("letters, digits and ._+@- only, such as db-team@clamav.net")
        return v

    @field_validator("public_key")
    @classmethod
    def _key(cls, v: str) -> str:
        return _public_key(v)


class Keyring(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    client: str = "/home/clamavdb/bin/clam-clientsync"
    from_: Annotated[list[str], Field(alias="from", min_length=1)]
    keys: Annotated[list[PusherKey], Field(min_length=1)]
    signers: Annotated[list[Signer], Field(min_length=1)]

    @field_validator("client")
    @classmethod
    def _client(cls, v: str) -> str:
        if not is_client_path(v):
            raise ValueError(
                "an absolute path without spaces or quotes, "
                "such as /home/clamavdb/bin/clam-clientsync"
            )
        return v

    @field_validator("from_")
    @classmethod
    def _from(cls, v: list[str]) -> list[str]:
        out = []
        for entry in v:
            try:
                net = ipaddress.ip_network(entry, strict=True)
            except ValueError as err:
                raise ValueError(f"{entry!r} is not an IP address or CIDR network") from err
            out.append(str(net.network_address) if net.num_addresses == 1 else str(net))
        return out


def load_keyring(text: str, origin: str = "keys/pushers.toml") -> Keyring:
    """Parse and validate pushers.toml; raise KeyringError naming the field and the fix."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise KeyringError(f"{origin}: not valid TOML: {err}") from err
    try:
        return Keyring.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        msg = first["msg"].removeprefix("Value error, ")
        raise KeyringError(f"{origin}: {where}: {msg}") from err


def _line(opts: tuple[tuple[str, str | None], ...], key: PusherKey) -> AuthorizedKey:
    kind, blob = key.public_key.split()
    return AuthorizedKey(opts, kind, blob, key.comment or f"pushsync-{key.source}")


def noshell_lines(ring: Keyring) -> list[AuthorizedKey]:
    """The restricted lines: each key may only run the client for its own source."""
    src = ",".join(ring.from_)
    return [
        _line(
            (("restrict", None), ("from", src), ("command", forced_command(ring.client, k.source))),
            k,
        )
        for k in ring.keys
    ]


def shell_lines(ring: Keyring) -> list[AuthorizedKey]:
    """Lines for admins who grant the team a shell: no forced command, still pinned by from=."""
    src = ",".join(ring.from_)
    opts = (
        ("from", src),
        ("no-agent-forwarding", None),
        ("no-port-forwarding", None),
        ("no-X11-forwarding", None),
    )
    return [_line(opts, k) for k in ring.keys]


def render_files(ring: Keyring) -> dict[str, str]:
    """Return file name -> content for every file ``syncd keys render`` writes."""
    signers = "".join(
        f'{s.principal} namespaces="{NAMESPACE}" {s.public_key}\n' for s in ring.signers
    )
    return {
        NOSHELL: _HEADER + "".join(render(k) + "\n" for k in noshell_lines(ring)),
        SHELL: _HEADER + "".join(render(k) + "\n" for k in shell_lines(ring)),
        ALLOWED_SIGNERS: signers,
    }
