"""The DNS record as the other features read it: the longest pool TTL a resolver may still
hold, and each TXT sent to the primary. Read-only: nothing here writes (the writes are
``syncd.dns.store``'s, the DNS update's own); plain data out. The monitor's maintenance
lead and the release's propagation read the DNS record through this module only (an import
contract in pyproject.toml holds it)."""

from __future__ import annotations

import sqlite3

from syncd.dns.plan import TXT_NAME, DnsSafetyError, TxtRecord
from syncd.dns.store import DnsStore


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def held_pool_ttl(conn: sqlite3.Connection, within_s: float = 7 * 86_400.0) -> int:
    """The longest TTL a pool record was sent with, or held at, in the changes recorded (the
    newest `within_s` seconds' worth of them; 0 when none): what a resolver may still keep a
    mirror's address for. The DNS tables' schema is the store's, brought up to date on first
    use as the store does."""
    return DnsStore(conn).held_pool_ttl(within_s)


def txt_sent(conn: sqlite3.Connection) -> list[tuple[float, dict[str, int]]]:
    """Each TXT the record says was sent to the primary: (when, its versions). A value that
    does not parse is left out."""
    if "dns_changes" not in _tables(conn):
        return []
    rows = conn.execute(
        "SELECT at, added FROM dns_changes WHERE rdtype = 'TXT' AND outcome = 'sent' "
        "AND view IS NULL AND name = ?",
        (TXT_NAME,),
    )
    out = []
    for r in rows:
        for value in str(r["added"]).split('" "') if r["added"] else []:
            try:
                txt = TxtRecord.parse(value)
            except DnsSafetyError:
                continue
            out.append((float(r["at"]), txt.versions))
    return out
