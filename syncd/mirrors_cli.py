"""``syncd mirrors list|show|add|remove|enable|disable|pin``: read and edit the inventory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from syncd.adapters.files import read_inventory, write_inventory
from syncd.core.config import ConfigError
from syncd.core.inventory import (
    Inventory,
    InventoryError,
    make_mirror,
    updated,
    with_mirror,
    without_mirror,
)
from syncd.publish_cli import ConfigOpt, fail, settings

mirrors_app = typer.Typer(help="Read and edit the inventory of mirrors.", no_args_is_help=True)

InventoryOpt = Annotated[
    Path | None, typer.Option("--inventory", help="The inventory TOML (default from config).")
]
NameArg = Annotated[str, typer.Argument(help="The mirror's name in the inventory.")]


def _path(inventory: Path | None, config: Path | None) -> Path:
    path = inventory or settings(config).inventory
    if path is None:
        raise fail("--inventory is required (or set 'inventory' in syncd.toml)")
    return path


def _load(path: Path, *, missing_ok: bool = False) -> Inventory:
    if missing_ok and not path.exists():
        return Inventory()
    try:
        return read_inventory(path)
    except (ConfigError, InventoryError) as err:
        raise fail(str(err)) from None


def _save(path: Path, inv: Inventory, message: str) -> None:
    write_inventory(path, inv)
    typer.echo(message)


@mirrors_app.command("list")
def list_cmd(inventory: InventoryOpt = None, config: ConfigOpt = None) -> None:
    """List mirrors: name, state, address, country."""
    inv = _load(_path(inventory, config))
    for m in inv.mirrors:
        state = "active" if m.active else "disabled"
        typer.echo(f"{m.name:30} {state:8} {m.user}@{m.host}:{m.port} {m.country}")


@mirrors_app.command("show")
def show_cmd(name: NameArg, inventory: InventoryOpt = None, config: ConfigOpt = None) -> None:
    """Show every field of one mirror."""
    mirror = _load(_path(inventory, config)).get(name)
    if mirror is None:
        raise fail(f"no mirror named {name!r}: see 'syncd mirrors list'")
    for key, value in mirror.model_dump().items():
        typer.echo(f"{key}: {value}")


@mirrors_app.command("add")
def add_cmd(
    name: NameArg,
    *,
    host: Annotated[str, typer.Option("--host", help="Host name or address of its sshd.")],
    country: Annotated[str, typer.Option("--country", help="ISO 3166 code, e.g. PL.")],
    host_key: Annotated[
        list[str], typer.Option("--host-key", help="Pinned host key 'ssh-ed25519 AAAA...'.")
    ],
    port: Annotated[int, typer.Option("--port")] = 22,
    user: Annotated[str, typer.Option("--user")] = "clamavdb",
    admin: Annotated[list[str] | None, typer.Option("--admin")] = None,
    notify: Annotated[list[str] | None, typer.Option("--notify")] = None,
    http: Annotated[str | None, typer.Option("--http", help="Base URL for checks.")] = None,
    inventory: InventoryOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Add a mirror (the inventory file is created when missing)."""
    path = _path(inventory, config)
    inv = _load(path, missing_ok=True)
    if inv.get(name) is not None:
        raise fail(f"mirror {name!r} exists: remove it first or use enable/disable/pin")
    fields = {
        "name": name,
        "host": host,
        "port": port,
        "user": user,
        "country": country,
        "admins": admin or [],
        "notify": notify or [],
        "host_keys": host_key,
        "http": http,
    }
    try:
        new = with_mirror(inv, make_mirror(fields))
    except InventoryError as err:
        raise fail(str(err)) from None
    _save(path, new, f"added {name}")


@mirrors_app.command("remove")
def remove_cmd(name: NameArg, inventory: InventoryOpt = None, config: ConfigOpt = None) -> None:
    """Remove a mirror from the inventory."""
    path = _path(inventory, config)
    try:
        inv = without_mirror(_load(path), name)
    except InventoryError as err:
        raise fail(str(err)) from None
    _save(path, inv, f"removed {name}")


def _set(name: str, path: Path, message: str, **changes: object) -> None:
    try:
        inv = updated(_load(path), name, **changes)
    except InventoryError as err:
        raise fail(str(err)) from None
    _save(path, inv, message)


@mirrors_app.command("enable")
def enable_cmd(name: NameArg, inventory: InventoryOpt = None, config: ConfigOpt = None) -> None:
    """Push to this mirror again."""
    _set(name, _path(inventory, config), f"enabled {name}", active=True)


@mirrors_app.command("disable")
def disable_cmd(name: NameArg, inventory: InventoryOpt = None, config: ConfigOpt = None) -> None:
    """Stop pushing to this mirror (it stays in the inventory)."""
    _set(name, _path(inventory, config), f"disabled {name}", active=False)


@mirrors_app.command("pin")
def pin_cmd(
    name: NameArg,
    *,
    host_key: Annotated[
        list[str],
        typer.Option("--host-key", help="The new host key, confirmed with the mirror's admin."),
    ],
    inventory: InventoryOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Replace a mirror's pinned host keys (after its admin confirmed the new fingerprint)."""
    _set(
        name,
        _path(inventory, config),
        f"pinned {len(host_key)} host key(s) for {name}",
        host_keys=host_key,
    )
