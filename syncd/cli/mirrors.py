"""``syncd mirrors``: read and edit the inventory (in place: comments and layout kept), and
onboard a new mirror: ``register`` its mail, ``check`` it, ``trust`` its host key."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from pushwire.authorized_keys import fingerprint
from pushwire.maintenance import NoticeError, check_window, parse_time
from syncd.cli.common import ConfigOpt, InventoryOpt, need, settings
from syncd.cli.groups import group
from syncd.errors import ConfigError
from syncd.files import edit_inventory, read_inventory
from syncd.inventory.edits import text_updated, text_with_mirror, text_without_mirror
from syncd.inventory.model import make_mirror
from syncd.inventory.onboarding import check, register, trust
from syncd.inventory.registration import SettingError, parse_settings

app = group(help="Read and edit the inventory of mirrors.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="The mirror's name in the inventory.")]


def _path(inventory: Path | None, config: Path | None) -> Path:
    cfg = settings(config)
    return need(inventory or cfg.inventory, "--inventory", "inventory", cfg)


def _edit(path: Path, edit: Callable[[str], str], message: str, *, create: bool = False) -> None:
    """Edit the inventory file in place (comments and layout kept), then say `message`."""
    edit_inventory(path, edit, create=create)
    typer.echo(message)


@app.command("list")
def list_cmd(inventory: InventoryOpt = None, config: ConfigOpt = None) -> None:
    """List mirrors: name, state, address, country."""
    for m in read_inventory(_path(inventory, config)).mirrors:
        state = "pending" if m.pending else "active" if m.active else "disabled"
        typer.echo(f"{m.name:30} {state:8} {m.user}@{m.host}:{m.port} {m.country}")


@app.command("show")
def show_cmd(name: NameArg, inventory: InventoryOpt = None, config: ConfigOpt = None) -> None:
    """Show every field of one mirror."""
    mirror = read_inventory(_path(inventory, config)).named(name)
    for key, value in mirror.model_dump().items():
        typer.echo(f"{key}: {value}")


@app.command("add")
def add_cmd(
    name: NameArg,
    *,
    host: Annotated[str, typer.Option("--host", help="Host name or address of its sshd.")],
    country: Annotated[str, typer.Option("--country", help="ISO 3166 code, e.g. PL.")],
    host_key: Annotated[
        list[str],
        typer.Option("--host-key", metavar="KEY", help="Pinned host key 'ssh-ed25519 AAAA...'."),
    ],
    port: Annotated[int, typer.Option("--port", help="Port of its sshd.")] = 22,
    user: Annotated[str, typer.Option("--user", help="The mirror's account.")] = "clamavdb",
    admin: Annotated[
        list[str] | None,
        typer.Option("--admin", metavar="'NAME <EMAIL>'", help="An admin (repeatable)."),
    ] = None,
    notify: Annotated[
        list[str] | None,
        typer.Option("--notify", metavar="EMAIL", help="Where its alerts go (repeatable)."),
    ] = None,
    http: Annotated[
        str | None, typer.Option("--http", metavar="URL", help="Base URL for checks.")
    ] = None,
    https: Annotated[
        str | None,
        typer.Option(
            "--https",
            metavar="URL",
            help="Where it serves https (https://NAME): the monitor checks its certificate.",
        ),
    ] = None,
    inventory: InventoryOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Add a mirror (the inventory file is created when missing)."""
    path = _path(inventory, config)
    mirror = make_mirror(
        {
            "name": name,
            "host": host,
            "port": port,
            "user": user,
            "country": country,
            "admins": admin or [],
            "notify": notify or [],
            "host_keys": host_key,
            "http": http,
            "https": https,
        }
    )
    _edit(path, lambda t: text_with_mirror(t, mirror, str(path)), f"added {name}", create=True)


@app.command("remove")
def remove_cmd(name: NameArg, inventory: InventoryOpt = None, config: ConfigOpt = None) -> None:
    """Remove a mirror from the inventory."""
    path = _path(inventory, config)
    _edit(path, lambda t: text_without_mirror(t, name, str(path)), f"removed {name}")


def _set(name: str, path: Path, message: str, **changes: object) -> None:
    _edit(path, lambda t: text_updated(t, name, str(path), **changes), message)


@app.command("enable")
def enable_cmd(name: NameArg, inventory: InventoryOpt = None, config: ConfigOpt = None) -> None:
    """Push to this mirror again."""
    _set(name, _path(inventory, config), f"enabled {name}", active=True)


@app.command("disable")
def disable_cmd(name: NameArg, inventory: InventoryOpt = None, config: ConfigOpt = None) -> None:
    """Stop pushing to this mirror (it stays in the inventory)."""
    _set(name, _path(inventory, config), f"disabled {name}", active=False)


@app.command("pin")
def pin_cmd(
    name: NameArg,
    *,
    host_key: Annotated[
        list[str],
        typer.Option(
            "--host-key", metavar="KEY", help="The new host key, confirmed with the mirror's admin."
        ),
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


@app.command("set")
def set_cmd(
    name: NameArg,
    settings_: Annotated[
        list[str],
        typer.Argument(
            metavar="KEY=VALUE...",
            help="port=2222, user=clamav, http=http://clamav.example.org, "
            "https=https://clamav.example.org (its certificate is checked), host=..., "
            "country=PL, admins='Jane Doe <jane@example.org>', notify=a@b.org,c@d.org, "
            "hubs=hub1.example.de,hub2.example.de (the hubs its client lists in HUBS), "
            "hub.max_transfers=20, hub.weight=1 (the mirror serves a second wave), "
            "maintenance=2026-03-01T09:00Z..2026-03-01T11:00Z reason='new disks' (a window "
            "announced by mail, UTC, at most [monitor] maintenance_max_days long) "
            "(lists comma-separated; http= or https= removes that URL, hubs= the list, hub= the "
            "hub table, maintenance= the window).",
        ),
    ],
    inventory: InventoryOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Change fields of one mirror, validated as the inventory is: what a registration mail
    cannot say (its sshd's port, its account, its base URL), what changed since, or its tier
    (hub.* makes it a hub that serves a second wave; hubs= the hubs it pulls from). Every
    other line of the inventory stays as it was. An IP address must be global unicast (a lab
    inventory sets allow_private_addresses = true); a mail address is one addr-spec with a
    domain, alone or after a name. A maintenance window (one the mirror's admin announced
    by mail) takes the mirror out of the DNS rotation shortly before it starts and holds its
    alert mails until it ends, as 'clam-clientsync maintenance' on the mirror does."""
    changes = parse_settings(settings_)
    window = changes.get("maintenance")
    if isinstance(window, dict):
        days = settings(config).monitor.maintenance_max_days
        try:
            check_window(parse_time(window["start"]), parse_time(window["end"]), max_s=days * 86400)
        except NoticeError as err:
            raise SettingError(f"maintenance: {err} ([monitor] maintenance_max_days)") from None
    shown = ", ".join(_shown(k, v) for k, v in changes.items())
    _set(name, _path(inventory, config), f"{name}: set {shown}", **changes)


def _shown(key: str, value: object) -> str:
    if key == "maintenance" and isinstance(value, dict):
        return f"maintenance={value['start']}..{value['end']} reason={value['reason']!r}"
    if isinstance(value, dict):
        return ", ".join(f"hub.{f}={n}" for f, n in value.items())
    return f"{key}={value}"


@app.command("register")
def register_cmd(
    mail: Annotated[Path, typer.Argument(help="The registration mail ('-' reads standard input).")],
    inventory: InventoryOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Add the mirrors a registration mail announces, as pending: '<name> ip address: <ip>
    country: <country> admin: <Name> <email> [|| <notify email>]', on port 22 with user
    clamavdb and http://NAME as its base URL: change those with 'syncd mirrors set NAME
    port=... user=... http=...'. The ip address must be global unicast (loopback and private
    ones only into an inventory with allow_private_addresses = true). Next: 'syncd mirrors
    check NAME', then 'syncd mirrors trust NAME --fingerprint SHA256:...' with the fingerprint
    the admin sent; the first successful publish makes the mirror active."""
    path = _path(inventory, config)
    try:
        raw = sys.stdin.buffer.read() if str(mail) == "-" else mail.read_bytes()
    except OSError as err:
        raise ConfigError(f"{mail}: {err.strerror}") from None
    names = ", ".join(r.name for r in register(path, raw))
    typer.echo(
        f"registered {names} as pending (port 22, user clamavdb, http://NAME: change them with"
        " syncd mirrors set NAME port=... user=... http=...): next, syncd mirrors check NAME"
    )


@app.command("check")
def check_cmd(
    name: NameArg,
    inventory: InventoryOpt = None,
    config: ConfigOpt = None,
    http_url: Annotated[
        str | None,
        typer.Option(
            "--http", metavar="URL", help="Check this base URL instead of the inventory's."
        ),
    ] = None,
) -> None:
    """Check a mirror before it goes live: its vhost answers /local_test with 'Success' for
    database.clamav.net, db.test.clamav.net and its own name, with no redirect (read as stored,
    64 bytes at most, within 30 s); with an https URL, its certificate is one freshclam
    accepts (chain, name, dates); its /local_stats/ refuses access without credentials (asked
    without any; open to the world: a warning, not a failure); its sshd answers on the
    inventory's port and offers a host key, shown with its fingerprint."""
    cafile = settings(config).monitor.https_cafile  # a lab's CA; else the system's store
    mirror, items = check(_path(inventory, config), name, http_url, str(cafile) if cafile else None)
    for item in items:
        mark = "warn" if item.warn else "ok  " if item.ok else "FAIL"
        typer.echo(f"{mark} {item.what}: {item.detail}")
    if mirror.host_keys:
        pinned = ", ".join(fingerprint(k) for k in mirror.host_keys)
        typer.echo(f"pinned: {pinned}")
    raise typer.Exit(0 if all(i.ok for i in items) else 1)


@app.command("trust")
def trust_cmd(
    name: NameArg,
    fingerprint_: Annotated[
        str,
        typer.Option(
            "--fingerprint", metavar="SHA256:...", help="SHA256:... as the mirror's admin sent it."
        ),
    ],
    inventory: InventoryOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Pin the host key the mirror offers now, only if its fingerprint is the one its admin
    sent (out of band). A mismatch pins nothing (exit 1)."""
    trust(_path(inventory, config), name, fingerprint_)
    typer.echo(f"pinned {fingerprint_} for {name}")
