"""DNS for the mirror network: the ``db.XY`` rotation pools and the ``current.cvd`` TXT record.

Pure: mirrors with their eligibility in, the records the zone should hold out; then the
difference against what the server holds, and the safety checks every update must pass.

- A pool ``db.<country>`` lists the A/AAAA addresses of that country's eligible mirrors
  (enabled, fresh, serving the current release). ``db.local`` lists every eligible mirror
  (by region instead, in BIND views, with ``[dns.local]``: see ``syncd.dns.geopools``).
- A pool never becomes empty: with no eligible mirror of its own, a country falls back to the
  best-scored eligible mirrors elsewhere, then to a configured default pool, and says so.
- The TXT record announces ``<clamav>:<main>:<daily>:<time>:<warning>:<flevel>:<safebrowsing>:
  <bytecode>``; it never goes backwards and never announces a version the source tree lacks.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from syncd.errors import SyncdError
from syncd.inventory.addresses import ip_problem

TXT_NAME = "current.cvd"
LOCAL_POOL = "db.local"
# a country's pool: db.<ISO alpha-2>, lower case, as the zone holds it
POOL_NAME = re.compile(r"db\.([a-z]{2})")


class DnsSafetyError(SyncdError, ValueError):
    """An update that must not be sent; the message says why."""


@dataclass(frozen=True)
class MirrorEntry:
    name: str
    country: str  # ISO alpha-2
    addresses: tuple[str, ...]
    eligible: bool
    reason: str = ""  # why not eligible
    score: float | None = None  # lower is better (monitor figures)


@dataclass(frozen=True)
class Pool:
    name: str  # relative to the zone: "db.pl"
    addresses: tuple[str, ...]
    members: tuple[str, ...]
    note: str | None = None  # set when the pool fell back


@dataclass(frozen=True)
class TxtRecord:
    clamav: str
    main: int
    daily: int
    record_time: int
    warning: int
    flevel: int
    safebrowsing: int
    bytecode: int

    def render(self) -> str:
        return ":".join(
            str(v)
            for v in (
                self.clamav,
                self.main,
                self.daily,
                self.record_time,
                self.warning,
                self.flevel,
                self.safebrowsing,
                self.bytecode,
            )
        )

    @classmethod
    def parse(cls, value: str) -> TxtRecord:
        parts = value.strip().strip('"').split(":")
        if len(parts) != 8:
            raise DnsSafetyError(f"TXT value {value!r} does not have the 8 fields of current.cvd")
        try:
            nums = [int(p) for p in parts[1:]]
        except ValueError:
            raise DnsSafetyError(f"TXT value {value!r} has a non-numeric version field") from None
        return cls(parts[0], *nums)

    @property
    def versions(self) -> dict[str, int]:
        return {"main": self.main, "daily": self.daily, "bytecode": self.bytecode}


@dataclass(frozen=True)
class Change:
    name: str
    rdtype: str
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    reason: str = ""
    view: str | None = None  # db.local by region: the BIND view whose db.local zone changes
    ttl: int | None = None  # the TTL of the records added (None: the server's default)
    held_ttl: int = 0  # the TTL the server held for this name and type before the change


def rdata_address(text: str, *, allow_private: bool = False) -> str:
    """Given a mirror's address, return it as an A/AAAA record holds it; raise DnsSafetyError
    when no client could use it: not an IP address, a zone id (``fe80::1%lo``), unspecified,
    multicast, link-local, reserved, or an IPv4 address mapped into IPv6; and, unless
    `allow_private` (the inventory's lab setting), loopback, private or otherwise not global,
    as registration refuses them (`syncd.inventory.addresses.ip_problem`)."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise DnsSafetyError(f"{text!r} is not an IP address") from None
    if isinstance(ip, ipaddress.IPv6Address) and (ip.scope_id or ip.ipv4_mapped):
        raise DnsSafetyError(f"{text!r} is scoped or IPv4-mapped: no client can reach it")
    if ip.is_unspecified or ip.is_multicast or ip.is_link_local:
        raise DnsSafetyError(f"{text!r} is unspecified, multicast or link-local")
    problem = ip_problem(str(ip), allow_private=allow_private)
    if problem:
        raise DnsSafetyError(f"{text!r} {problem}")
    return str(ip)


def pool_addresses(
    resolved: Iterable[str], *, allow_private: bool = False
) -> tuple[tuple[str, ...], list[str]]:
    """Given the addresses a mirror's name resolves to, return those a pool may list
    (`rdata_address`) and a note for each that it may not: a mirror whose name resolves only
    to refused addresses is out of the pools, with the reason, and no other mirror is."""
    good, notes = [], []
    for a in resolved:
        try:
            good.append(rdata_address(a, allow_private=allow_private))
        except DnsSafetyError as err:
            notes.append(str(err))
    return tuple(good), notes


def pool_countries(names: Iterable[str]) -> set[str]:
    """Given names the zone holds (relative), return the countries whose pools they are."""
    out = set()
    for name in names:
        m = POOL_NAME.fullmatch(name.lower())
        if m:
            out.add(m.group(1))
    return out


def _split(addresses: Iterable[str]) -> tuple[list[str], list[str]]:
    v4: list[str] = []
    v6: list[str] = []
    for a in addresses:
        ip = ipaddress.ip_address(a)
        (v4 if ip.version == 4 else v6).append(str(ip))
    return v4, v6


def _best(entries: Sequence[MirrorEntry], count: int) -> list[MirrorEntry]:
    ranked = sorted(entries, key=lambda e: (e.score is None, e.score or 0.0, e.name))
    return ranked[:count]


def plan_pools(
    mirrors: Sequence[MirrorEntry],
    *,
    fallback_count: int = 3,
    default_pool: Sequence[str] = (),
    countries: Iterable[str] = (),
) -> list[Pool]:
    """Return one pool per country with a registered mirror and per country in `countries`
    (every pool the zone already holds, and the inventory's countries whatever their mirrors'
    state: a pool is never left behind), plus ``db.local``."""
    eligible = [m for m in mirrors if m.eligible and m.addresses]
    countries = sorted({m.country.lower() for m in mirrors} | {c.lower() for c in countries})
    pools = []
    for cc in countries:
        own = [m for m in eligible if m.country.lower() == cc]
        note = None
        if not own:
            others = _best(eligible, fallback_count)
            if others:
                own = others
                note = f"no eligible mirror in {cc.upper()}: using {', '.join(m.name for m in own)}"
            elif default_pool:
                pools.append(
                    Pool(
                        f"db.{cc}",
                        tuple(sorted(default_pool)),
                        (),
                        f"no eligible mirror anywhere: default pool for {cc.upper()}",
                    )
                )
                continue
            else:
                raise DnsSafetyError(
                    f"db.{cc} would be empty and no default pool is configured: set "
                    "[dns] default_pool in syncd.toml"
                )
        pools.append(_pool(f"db.{cc}", own, note))
    if eligible:
        pools.append(_pool(LOCAL_POOL, eligible, None))
    elif default_pool:
        pools.append(Pool(LOCAL_POOL, tuple(sorted(default_pool)), (), "default pool"))
    return pools


def _pool(name: str, members: Sequence[MirrorEntry], note: str | None) -> Pool:
    addresses = sorted({a for m in members for a in m.addresses})
    return Pool(name, tuple(addresses), tuple(sorted(m.name for m in members)), note)


def desired_records(
    pools: Sequence[Pool], txt: TxtRecord | None
) -> dict[tuple[str, str], tuple[str, ...]]:
    """Return (relative name, type) -> sorted rdata texts for everything we manage."""
    records: dict[tuple[str, str], tuple[str, ...]] = {}
    for pool in pools:
        v4, v6 = _split(pool.addresses)
        records[(pool.name, "A")] = tuple(sorted(v4))
        records[(pool.name, "AAAA")] = tuple(sorted(v6))
    if txt is not None:
        records[(TXT_NAME, "TXT")] = (f'"{txt.render()}"',)
    return records


def diff(
    desired: Mapping[tuple[str, str], Sequence[str]],
    current: Mapping[tuple[str, str], Sequence[str]],
) -> list[Change]:
    """Return the changes that turn `current` into `desired` (only what differs)."""
    changes = []
    for key in sorted(desired):
        want, have = set(desired[key]), set(current.get(key, ()))
        if want != have:
            changes.append(
                Change(key[0], key[1], tuple(sorted(want - have)), tuple(sorted(have - want)))
            )
    return changes


def check_txt(new: TxtRecord, current: TxtRecord | None, source: Mapping[str, int]) -> None:
    """Raise DnsSafetyError unless `new` is backed by the source tree and not a step back."""
    for db, version in new.versions.items():
        if db not in source:
            raise DnsSafetyError(
                f"the source tree has no {db}.cvd: refusing to announce {db} {version}"
            )
        if version > source[db]:
            raise DnsSafetyError(
                f"TXT would announce {db} {version} but the source tree has {source[db]}"
            )
    if current is None:
        return
    for db, version in new.versions.items():
        if version < current.versions[db]:
            raise DnsSafetyError(
                f"TXT would go backwards: {db} {current.versions[db]} -> {version}"
            )
    if new.record_time < current.record_time:
        raise DnsSafetyError("TXT record time would go backwards")


def refreshed_txt(current: TxtRecord, now: float, source: Mapping[str, int]) -> TxtRecord:
    """Given the TXT record the server holds, return it with its record time moved to `now` and
    every other field unchanged (the heartbeat); raise DnsSafetyError when the time would go
    backwards or the source tree no longer backs what the record announces."""
    new = replace(current, record_time=int(now))
    check_txt(new, current, source)
    return new
