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
        state = "pending" if m.pending else "active" if m.active else "disabled"
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


@mirrors_app.command("register")
def register_cmd(
    mail: Annotated[Path, typer.Argument(help="The registration mail ('-' reads standard input).")],
    inventory: InventoryOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Add the mirrors a registration mail announces, as pending: '<name> ip address: <ip>
    country: <country> admin: <Name> <email> [|| <notify email>]'. Next: 'syncd mirrors check
    NAME', then 'syncd mirrors trust NAME --fingerprint SHA256:...' with the fingerprint the
    admin sent; the first successful publish makes the mirror active."""
    import sys

    from syncd.core.registration import RegistrationError, parse_mail

    path = _path(inventory, config)
    inv = _load(path, missing_ok=True)
    text = sys.stdin.read() if str(mail) == "-" else _read_mail(mail)
    try:
        registrations = parse_mail(text)
    except RegistrationError as err:
        raise fail(str(err)) from None
    for reg in registrations:
        if inv.get(reg.name) is not None:
            raise fail(f"mirror {reg.name!r} is already in the inventory: nothing added")
        fields: dict[str, object] = {
            "name": reg.name,
            "host": reg.address,
            "country": reg.country,
            "admins": [reg.admin],
            "notify": [reg.notify] if reg.notify else [],
            "pending": True,
            "host_keys": [],
            "http": f"http://{reg.name}",
            "active": True,
        }
        try:
            inv = with_mirror(inv, make_mirror(fields))
        except InventoryError as err:
            raise fail(str(err)) from None
    names = ", ".join(r.name for r in registrations)
    _save(path, inv, f"registered {names} as pending: next, syncd mirrors check NAME")


def _read_mail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError as err:
        raise fail(f"{path}: {err.strerror}") from None


@mirrors_app.command("check")
def check_cmd(
    name: NameArg,
    inventory: InventoryOpt = None,
    config: ConfigOpt = None,
    http_url: Annotated[
        str | None, typer.Option("--http", help="Check this base URL instead of the inventory's.")
    ] = None,
) -> None:
    """Check a mirror before it goes live: its vhost answers /local_test with 'Success' for
    database.clamav.net, db.test.clamav.net and its own name, with no redirect; its sshd
    answers on the inventory's port and offers a host key, shown with its fingerprint."""
    import httpx

    from syncd.adapters.mirrorhttp import local_test
    from syncd.adapters.ssh import fetch_host_key
    from syncd.core.errors import PushError
    from syncd.core.golive import judge_host_key, judge_local_test, vhost_names

    mirror = _load(_path(inventory, config)).get(name)
    if mirror is None:
        raise fail(f"no mirror named {name!r}: see 'syncd mirrors list'")
    base = http_url or mirror.http or f"http://{mirror.host}"
    items = []
    for host in vhost_names(mirror.name):
        try:
            status, body, location = local_test(base, host)
            items.append(judge_local_test(host, status, body, location))
        except httpx.HTTPError as err:
            items.append(judge_local_test(host, None, "", None, f"{type(err).__name__}: {err}"))
    try:
        items.append(judge_host_key(fetch_host_key(mirror.host, mirror.port), None))
    except PushError as err:
        items.append(judge_host_key(None, f"{mirror.host}:{mirror.port}: {err}"))
    for item in items:
        typer.echo(f"{'ok  ' if item.ok else 'FAIL'} {item.what}: {item.detail}")
    if mirror.host_keys:
        from pushwire.authorized_keys import fingerprint

        pinned = ", ".join(fingerprint(k) for k in mirror.host_keys)
        typer.echo(f"pinned: {pinned}")
    raise typer.Exit(0 if all(i.ok for i in items) else 1)


@mirrors_app.command("trust")
def trust_cmd(
    name: NameArg,
    fingerprint_: Annotated[
        str, typer.Option("--fingerprint", help="SHA256:... as the mirror's admin sent it.")
    ],
    inventory: InventoryOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Pin the host key the mirror offers now, only if its fingerprint is the one its admin
    sent (out of band). A mismatch pins nothing."""
    from syncd.adapters.ssh import fetch_host_key
    from syncd.core.errors import PushError
    from syncd.core.golive import TrustError, check_fingerprint

    path = _path(inventory, config)
    inv = _load(path)
    mirror = inv.get(name)
    if mirror is None:
        raise fail(f"no mirror named {name!r}: see 'syncd mirrors list'")
    try:
        key = check_fingerprint(fetch_host_key(mirror.host, mirror.port), fingerprint_)
    except (TrustError, PushError) as err:
        typer.echo(f"syncd: {name}: {err}", err=True)
        raise typer.Exit(1) from None
    _save(path, updated(inv, name, host_keys=[key]), f"pinned {fingerprint_} for {name}")
