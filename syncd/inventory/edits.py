"""Edits of the inventory's TOML text (tomlkit) that keep the operator's comments and
layout, so ``syncd mirrors add|remove|enable|disable|pin|set`` change only what they are asked
to; each validates its result as reading the file does. Pure: text in, text out. (Apart from
`syncd.inventory.model`: tomlkit is start-up time that reading the inventory need not pay.)
"""

from __future__ import annotations

import functools
from typing import Any

import tomlkit
import tomlkit.items
from pydantic import BaseModel

from syncd.inventory.model import (
    Inventory,
    InventoryError,
    Mirror,
    parse_inventory,
    updated,
)


def render_inventory(inventory: Inventory, header: str = "") -> str:
    """Return TOML text that parses back to `inventory` (defaults written out, None omitted)."""
    if inventory.allow_private_addresses:
        header += "allow_private_addresses = true\n\n"
    return functools.reduce(text_with_mirror, inventory.mirrors, header)


def _document(text: str, origin: str) -> tomlkit.TOMLDocument:
    parse_inventory(text, origin)  # the same errors as reading it
    return tomlkit.parse(text)


def _tables(doc: tomlkit.TOMLDocument) -> Any:
    """The document's list of mirror tables (``[[mirrors]]``, or an inline ``mirrors = [...]``)."""
    if "mirrors" not in doc:
        doc.append("mirrors", tomlkit.aot())
    return doc["mirrors"]


def _index(tables: Any, name: str) -> int:
    return next(i for i, table in enumerate(tables) if table.get("name") == name)


def _set(table: Any, key: str, value: object) -> None:
    """Set `key` in `table`: in place when present, else after its last key (before the
    comments and blank lines that lead to the next table)."""
    if value is None:
        if key in table:
            del table[key]
        return
    if isinstance(value, BaseModel):  # a table of its own (``hub``): written inline
        inline = tomlkit.inline_table()
        inline.update(value.model_dump())
        value = inline
    if key in table or not isinstance(table, tomlkit.items.Table):
        table[key] = value
        return
    keys = [k for k, _ in table.value.body if k is not None]
    if keys:
        table.value._insert_after(keys[-1], key, value)
    else:
        table.append(key, value)


def text_with_mirror(text: str, mirror: Mirror, origin: str = "inventory.toml") -> str:
    """Return `text` with `mirror` appended as a new table; raise InventoryError when a mirror
    of that name exists."""
    doc = _document(text, origin)
    tables = _tables(doc)
    if any(t.get("name") == mirror.name for t in tables):
        raise InventoryError(
            f"mirror {mirror.name!r} exists: remove it first or use enable/disable/pin"
        )
    fields = {k: v for k, v in mirror.model_dump().items() if v is not None}
    if isinstance(tables, tomlkit.items.AoT):
        table = tomlkit.table()
        for key, value in fields.items():
            table.append(key, value)
        if tomlkit.dumps(doc).strip() and not tomlkit.dumps(doc).endswith("\n\n"):
            table.trivia.indent = "\n"  # a blank line before the new table
        tables.append(table)
    else:
        inline = tomlkit.inline_table()
        inline.update(fields)
        tables.append(inline)
    out = tomlkit.dumps(doc)
    parse_inventory(out, origin)
    return out


def text_without_mirror(text: str, name: str, origin: str = "inventory.toml") -> str:
    """Return `text` without the table of mirror `name`; raise InventoryError when absent."""
    parse_inventory(text, origin).named(name)
    doc = tomlkit.parse(text)
    tables = _tables(doc)
    del tables[_index(tables, name)]
    return tomlkit.dumps(doc)


def text_updated(text: str, name: str, origin: str = "inventory.toml", **changes: object) -> str:
    """Return `text` with the fields of mirror `name` changed (validated as `updated` does;
    a field changed to None is removed); every other line stays as it was."""
    mirror = updated(parse_inventory(text, origin), name, **changes).named(name)
    doc = tomlkit.parse(text)
    tables = _tables(doc)
    table = tables[_index(tables, name)]
    for key in changes:
        _set(table, key, getattr(mirror, key))
    out = tomlkit.dumps(doc)
    parse_inventory(out, origin)
    return out
