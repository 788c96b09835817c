"""The documents the fakes write: a client report (the ``clam-clientsync`` contract, report
version 1) and an inventory block, shared by every fake and real mirror the harness starts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devtools.harness.cvd import DEFAULT_VERSIONS

if TYPE_CHECKING:
    from devtools.harness.sshd import Sshd

FIXED_TIME = "2026-11-25T14:00:00Z"


def report_doc(
    status: str = "ok",
    versions: dict[str, int] | None = None,
    *,
    verb: str = "sync",
    at: str = FIXED_TIME,
    build_time: str = "x",
    **extra: Any,
) -> dict[str, Any]:
    """Return a valid client report with every contract key; `extra` replaces or adds keys."""
    versions = DEFAULT_VERSIONS if versions is None else versions
    doc: dict[str, Any] = {
        "report_version": 1,
        "status": status,
        "verb": verb,
        "source_requested": "rsync1.clamav.net",
        "source_used": "rsync1.clamav.net",
        "attempts": [],
        "started_at": at,
        "finished_at": "2026-11-25T14:00:01Z" if at == FIXED_TIME else at,
        "duration_s": 1.0,
        "files_transferred": 3,
        "bytes_transferred": 6000,
        "files_deleted": 0,
        "databases": {
            db: {"version": v, "build_time": build_time, "signatures": 1000, "md5_ok": True}
            for db, v in versions.items()
        },
        "error": None,
        "client_version": "fake-1",
    }
    doc.update(extra)
    return doc


def report(status: str = "ok", versions: dict[str, int] | None = None, **extra: Any) -> str:
    """A valid client report (contract keys), as JSON text."""
    return json.dumps(report_doc(status, versions, **extra))


def write_secret(path: Path, text: str) -> Path:
    """Write `text` to `path`, readable and writable by its owner only (as syncd demands of
    the pusher key and the TSIG secret); return `path`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)  # an existing file keeps its mode through O_CREAT
        f.write(text)
    return path


# the first line of every test inventory: the harness's mirrors all listen on 127.0.0.0/8,
# which a production inventory refuses (see syncd.inventory.addresses)
LAB_INVENTORY = "allow_private_addresses = true\n\n"


def inventory_block(fields: dict[str, Any]) -> str:
    """Return one ``[[mirrors]]`` table of an inventory, a TOML value per field."""
    lines = ["[[mirrors]]"] + [f"{k} = {json.dumps(v)}" for k, v in fields.items()]
    return "\n".join(lines) + "\n"


def lab_inventory(mirrors: list[dict[str, Any]]) -> str:
    """Return a lab inventory (loopback addresses allowed) of `mirrors`, each a dict of its
    fields; a mirror without ``host_keys`` gets a placeholder pinned key (tests of what reads
    the inventory and never connects)."""
    placeholder = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq0gZ7wI0nR0b7eQq0k9v3bq2yqLx1m6y1c7J8Vb3aT"
    return LAB_INVENTORY + "\n".join(
        inventory_block({"host_keys": [placeholder], **m}) for m in mirrors
    )


def sshd_mirror(name: str, sshd: Sshd) -> dict[str, Any]:
    """Return the inventory fields of mirror `name` served by `sshd` directly."""
    return {
        "name": name,
        "host": sshd.host,
        "port": sshd.port,
        "user": sshd.account.name,
        "country": "PL",
        "admins": [f"Admin <admin@{name}>"],
        "host_keys": [sshd.host_key_line],
    }
