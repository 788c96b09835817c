"""The DNS part of the record: every change sent to the server, with its reason, the TTL the
removed records had, and when every authoritative server served it (settled): what the TXT
must wait out before it may move (``syncd.dns.steps``)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from syncd.dns.plan import Change
from syncd.dns.steps import Removal
from syncd.errors import EXIT_TEMPFAIL, SyncdError
from syncd.sqlite import migrate

MIGRATIONS = [
    """
    CREATE TABLE dns_changes (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        name TEXT NOT NULL,
        rdtype TEXT NOT NULL,
        added TEXT NOT NULL,
        removed TEXT NOT NULL,
        reason TEXT NOT NULL,
        outcome TEXT NOT NULL
    )
    """,
    # db.local by region: the BIND view whose db.local zone the change is for (NULL: the zone)
    "ALTER TABLE dns_changes ADD COLUMN view TEXT",
    # the TTL the server held for the changed records (a removed record may live that long in
    # caches), and when every authoritative server was seen serving the change
    "ALTER TABLE dns_changes ADD COLUMN held_ttl INTEGER",
    "ALTER TABLE dns_changes ADD COLUMN settled_at REAL",
    # the TTL the change gave the records it added (a lower one than the server held leaves
    # the old set in caches for the old TTL all the same)
    "ALTER TABLE dns_changes ADD COLUMN ttl INTEGER",
]

# db.local by region: every view named.conf was rendered with (``syncd dns render
# --named-conf``), so that a push manages each view BIND may hold, even one whose country has
# left the inventory since
VIEW_MIGRATIONS = [
    """
    CREATE TABLE dns_views (
        view TEXT PRIMARY KEY,
        at REAL NOT NULL
    )
    """,
]


LOCK_WAIT_S = 900.0  # the longest another updater holds DNS: its settles and its TTL wait
# the monitor's rotation waits less: its next pass comes within 15 minutes, and a pass must end
# within its unit's TimeoutStartSec (14 min: a 5-minute pass, 1 minute of settling, this)
ROTATION_LOCK_WAIT_S = 240.0


class DnsBusy(SyncdError):
    """Another syncd kept DNS longer than LOCK_WAIT_S."""

    exit_code = EXIT_TEMPFAIL


@contextlib.contextmanager
def dns_lock(
    state: Path,
    *,
    wait_s: float = LOCK_WAIT_S,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """Hold DNS for one updater at a time (the publish's gate, the monitor's rotation, the
    heartbeat's TXT refresh, ``syncd dns push``): an flock on ``<record>.dns.lock``, beside the
    record, released by the kernel if the process dies. Wait at most `wait_s`, then raise
    DnsBusy: what one updater read (the TXT, the pools) stays true until it is done."""
    path = Path(f"{state}.dns.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        waited = 0.0
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if waited >= wait_s:
                    raise DnsBusy(
                        f"another syncd has been updating DNS for {wait_s:.0f} s ({path}): "
                        "try again once it is done"
                    ) from None
                sleep(0.5)
                waited += 0.5
        yield
    finally:
        os.close(fd)


class DnsStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        migrate(conn, "dns", MIGRATIONS)
        migrate(conn, "dns-views", VIEW_MIGRATIONS)

    def record(self, at: float, changes: Sequence[Change], outcome: str) -> list[int]:
        """Record `changes` with `outcome` (``sending`` before they go, then `set_outcome`);
        return their ids."""
        ids = []
        for c in changes:
            cur = self.conn.execute(
                "INSERT INTO dns_changes (at, name, rdtype, added, removed, reason, outcome, "
                "view, held_ttl, ttl) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    at,
                    c.name,
                    c.rdtype,
                    " ".join(c.add),
                    " ".join(c.remove),
                    c.reason,
                    outcome,
                    c.view,
                    c.held_ttl,
                    c.ttl,
                ),
            )
            ids.append(int(cur.lastrowid or 0))
        return ids

    def set_outcome(self, ids: Sequence[int], outcome: str) -> None:
        self.conn.executemany(
            "UPDATE dns_changes SET outcome = ? WHERE id = ?", [(outcome, i) for i in ids]
        )

    def changes(self, limit: int = 100) -> list[sqlite3.Row]:
        return list(
            self.conn.execute("SELECT * FROM dns_changes ORDER BY id DESC LIMIT ?", (limit,))
        )

    def settle(self, at: float) -> None:
        """Every change attempted so far (sent, or failed, or cut off: the server may have
        applied it without our hearing) is what every authoritative server serves, or never
        will be, as of `at`."""
        self.conn.execute("UPDATE dns_changes SET settled_at = ? WHERE settled_at IS NULL", (at,))

    def removals(self, now: float, *, default_ttl: int) -> list[Removal]:
        """The pools' changes whose old records a resolver may still hold at `now`: every A/AAAA
        change attempted (whatever its recorded outcome) that removed records, or that gave the
        set a lower TTL than the server held, and whose held TTL has not passed since it
        settled (one not seen settled counts from `now`). `default_ttl`: the TTL of changes
        recorded before TTLs were."""
        rows = self.conn.execute(
            "SELECT settled_at, held_ttl FROM dns_changes WHERE rdtype IN ('A', 'AAAA') "
            "AND (removed != '' OR COALESCE(held_ttl, 0) > COALESCE(ttl, held_ttl, 0)) "
            "AND (settled_at IS NULL OR settled_at + COALESCE(held_ttl, ?) > ?)",
            (default_ttl, now),
        )
        return [
            Removal(
                now if r["settled_at"] is None else r["settled_at"],
                default_ttl if r["held_ttl"] is None else int(r["held_ttl"]),
            )
            for r in rows
        ]

    def held_pool_ttl(self, within_s: float = 7 * 86_400.0) -> int:
        """The longest TTL a pool record was sent with, or held at, in the changes recorded
        (the newest `within_s` seconds' worth of them; 0 when none): what a resolver may
        still keep a mirror's address for."""
        row = self.conn.execute(
            "SELECT MAX(MAX(COALESCE(ttl, 0), COALESCE(held_ttl, 0))) FROM dns_changes "
            "WHERE rdtype IN ('A', 'AAAA') AND at >= (SELECT MAX(at) FROM dns_changes) - ?",
            (within_s,),
        ).fetchone()
        return int(row[0] or 0)

    def names(self) -> set[str]:
        """Every name (relative to the zone, views apart) a change was ever sent for."""
        return {
            r["name"]
            for r in self.conn.execute(
                "SELECT DISTINCT name FROM dns_changes WHERE view IS NULL AND outcome = 'sent'"
            )
        }

    def note_views(self, views: Sequence[str], at: float) -> None:
        """Record `views` as rendered into named.conf at `at`."""
        self.conn.executemany(
            "INSERT INTO dns_views (view, at) VALUES (?, ?) "
            "ON CONFLICT (view) DO UPDATE SET at = excluded.at",
            [(v, at) for v in views],
        )

    def views(self) -> set[str]:
        """Every BIND view the server may hold a db.local for: each one named.conf was ever
        rendered with, and each one a change was ever sent to."""
        rows = self.conn.execute(
            "SELECT view FROM dns_views UNION "
            "SELECT DISTINCT view FROM dns_changes WHERE view IS NOT NULL"
        )
        return {r[0] for r in rows}
