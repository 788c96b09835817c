"""Reading and writing syncd's own files: syncd.toml (found in archvsync's search order), the
inventory (rewritten atomically), and the release's CVD headers in the source tree."""

from __future__ import annotations

import os
from pathlib import Path

from pushwire.cvd import DATABASES, HEADER_SIZE
from syncd.core.config import ConfigError, SyncdConfig, candidates, parse_config
from syncd.core.inventory import Inventory, parse_inventory, render_inventory

INVENTORY_HEADER = "# pushsync mirror inventory (edited by 'syncd mirrors ...')\n\n"


def find_config(explicit: Path | None) -> Path | None:
    """Return the syncd.toml to use: `explicit` when given (it must exist), else the first of
    ./etc/syncd.toml, ~/.config/syncd/syncd.toml, /etc/syncd/syncd.toml that exists."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"{explicit}: no such configuration file (given with --config)")
        return explicit
    for path in candidates(Path.cwd(), Path.home()):
        if path.is_file():
            return path
    return None


def load_config(explicit: Path | None) -> tuple[SyncdConfig, Path | None]:
    """Return the configuration in effect and the file it came from (defaults when none)."""
    path = find_config(explicit)
    if path is None:
        return SyncdConfig(), None
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
    return parse_config(text, str(path)), path


def read_inventory(path: Path) -> Inventory:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such inventory file: create it or fix --inventory") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the inventory: {err.strerror}") from None
    return parse_inventory(text, str(path))


def write_inventory(path: Path, inventory: Inventory) -> None:
    """Replace the inventory file atomically (write beside it, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with tmp.open("w") as f:
        f.write(render_inventory(inventory, INVENTORY_HEADER))
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def read_cvd_headers(tree: Path) -> dict[str, bytes]:
    """Return the first 512 bytes of each CVD (daily, main, bytecode) found in `tree`."""
    if not tree.is_dir():
        raise ConfigError(f"{tree}: the source tree is not a directory")
    heads: dict[str, bytes] = {}
    for db in DATABASES:
        path = tree / f"{db}.cvd"
        if path.is_file():
            with path.open("rb") as f:
                heads[db] = f.read(HEADER_SIZE)
    if not heads:
        raise ConfigError(f"{tree}: no daily.cvd, main.cvd or bytecode.cvd in the source tree")
    return heads
