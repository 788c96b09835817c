"""``db.local`` by the asker's location: one pool per region, served by BIND views that match
the client's source address in a GeoIP2 country database.

Pure: the inventory's countries and the mirrors' eligibility in; the regions (the views), each
region's pool, and the named.conf text that declares the views out.

- Regions are stable: they follow the countries of registered mirrors (eligible, disabled
  or stale alike), so named.conf changes only when the inventory gains a country. A country
  view for each such country (and, when ``neighbours`` is in the fallback order, for each of
  their neighbours), a continent view for each continent holding one, and the default view
  ``world`` for the rest. The views the server may still hold from before (a country whose
  mirrors left the inventory) are planned too: every view a resolver can reach is managed.
- A region's pool is its own eligible mirrors, all of them; when they are fewer than
  ``min_pool``, the best-scored eligible mirrors of the next tier of the fallback order fill it
  up to ``min_pool`` (neighbours, then the continent, then the world). The world is always the
  last resort, then the configured default pool: a pool is never empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from syncd.dns.plan import LOCAL_POOL, DnsSafetyError, MirrorEntry, Pool
from syncd.inventory.countries import CONTINENTS, NEIGHBOURS

Tier = Literal["neighbours", "continent", "world"]
WORLD = "world"
ZONE_VIEW = "pushsync-zone"  # matches no client: defines the main zone the views share
# the database files BIND 9.18 opens in geoip-directory to answer `geoip country` and
# `geoip continent` (it tries them in this order)
COUNTRY_DATABASES = ("GeoIP2-Country.mmdb", "GeoLite2-Country.mmdb")
# what may reach named.conf: names and paths, never a quote, a brace, a semicolon or a newline
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
PATH_PATTERN = r"^[A-Za-z0-9_./+-]+$"
BASE64_PATTERN = r"^[A-Za-z0-9+/]+={0,2}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=253)]
PathText = Annotated[str, Field(pattern=PATH_PATTERN, max_length=4096)]


def check_conf_text(value: str, what: str, *, path: bool = False) -> str:
    """Return `value` if it may be written into named.conf as a name (or a path); raise
    DnsSafetyError naming the field otherwise."""
    if not re.fullmatch(PATH_PATTERN if path else NAME_PATTERN, value):
        kind = (
            "a path of letters, digits and ._/+-" if path else "a name of letters, digits and ._-"
        )
        raise DnsSafetyError(f"{what} {value!r} cannot go into named.conf: use {kind}")
    return value


class LocalPolicy(BaseModel):
    """``[dns.local]``: db.local by region. Absent: db.local is one pool of every eligible
    mirror, in the zone itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fallback: list[Tier] = ["neighbours", "continent", "world"]
    min_pool: Annotated[int, Field(ge=1, le=50)] = 2
    # where BIND reads GeoLite2-Country.mmdb (or GeoIP2-Country.mmdb, or DB-IP's lite country
    # database under that name); without one, only the default view is rendered
    geoip_directory: PathText = "/usr/share/GeoIP"
    # the zone file of the main zone, as named.conf names it (the first view defines the zone,
    # the others share it with in-view)
    zone_file: PathText = "clamav.net.zone"
    # the names that serve the db.local zones (their SOA and NS records)
    nameserver: Name = "ns1.clamav.net."
    hostmaster: Name = "hostmaster.clamav.net."


@dataclass(frozen=True)
class Region:
    """One BIND view: the clients it answers and the name syncd's updates reach it by."""

    kind: Literal["country", "continent", "world"]
    code: str  # ISO alpha-2, a continent code, or "" for the world

    @property
    def view(self) -> str:
        return {"country": "cc-", "continent": "continent-", "world": WORLD}[
            self.kind
        ] + self.code.lower()

    @property
    def match(self) -> str:
        """The GeoIP2 ACL element that selects the region's clients."""
        if self.kind == "world":
            return "any"
        return f"geoip {self.kind} {self.code}"

    def key_name(self, base: str) -> str:
        """The TSIG key that selects this view for syncd's updates and reads."""
        return f"{base}-{self.view}"


@dataclass(frozen=True)
class RegionPool:
    region: Region
    pool: Pool


VIEW_NAME = re.compile(r"cc-([a-z]{2})|continent-([a-z]{2})|world")


def region_of_view(view: str) -> Region | None:
    """The region a view name stands for (as `Region.view` writes it), None for a name that
    is no region's (another view of the server, a country or continent not known)."""
    found = VIEW_NAME.fullmatch(view)
    if found is None:
        return None
    country, continent = found.groups()
    if country is not None:
        return Region("country", country.upper()) if country.upper() in CONTINENTS else None
    if continent is not None:
        code = continent.upper()
        return Region("continent", code) if code in set(CONTINENTS.values()) else None
    return Region("world", "")


def regions(
    countries: Iterable[str], policy: LocalPolicy, views: Iterable[str] = ()
) -> list[Region]:
    """Return the views, most specific first, the world last: those of `countries` (see the
    module's docstring) and those named in `views` (the views the server holds from before;
    names that are no region's are left out)."""
    own = {c.upper() for c in countries if c.upper() in CONTINENTS}
    wanted = {Region("country", cc) for cc in own}
    if "neighbours" in policy.fallback:
        for cc in own:
            wanted |= {Region("country", n) for n in NEIGHBOURS.get(cc, frozenset())}
    if "continent" in policy.fallback:
        wanted |= {Region("continent", CONTINENTS[cc]) for cc in own}
    wanted |= {r for r in map(region_of_view, views) if r is not None}
    wanted.discard(Region("world", ""))
    order = {"country": 0, "continent": 1}
    return [*sorted(wanted, key=lambda r: (order[r.kind], r.code)), Region("world", "")]


def _rank(entries: Iterable[MirrorEntry]) -> list[MirrorEntry]:
    return sorted(entries, key=lambda e: (e.score is None, e.score or 0.0, e.name))


def _tiers(region: Region, policy: LocalPolicy) -> list[tuple[str, frozenset[str] | None]]:
    """The region's own countries, then each fallback tier's (None: every country)."""
    if region.kind == "world":
        return [(WORLD, None)]
    if region.kind == "continent":
        members = frozenset(cc for cc, c in CONTINENTS.items() if c == region.code)
        return [(region.code, members), (WORLD, None)]
    tiers: list[tuple[str, frozenset[str] | None]] = [(region.code, frozenset({region.code}))]
    for tier in policy.fallback:
        if tier == "neighbours":
            tiers.append(("neighbours", NEIGHBOURS.get(region.code, frozenset())))
        elif tier == "continent":
            continent = CONTINENTS.get(region.code, "")
            members = frozenset(cc for cc, c in CONTINENTS.items() if c == continent)
            tiers.append((continent or "continent", members))
    tiers.append((WORLD, None))  # the last resort, listed or not
    return tiers


def region_pool(
    region: Region,
    mirrors: Sequence[MirrorEntry],
    policy: LocalPolicy,
    default_pool: Sequence[str] = (),
) -> RegionPool:
    """Return the region's db.local pool (see the module's docstring for the order)."""
    eligible = [m for m in mirrors if m.eligible and m.addresses]
    chosen: list[MirrorEntry] = []
    filled: list[str] = []
    own = 0
    for i, (label, countries) in enumerate(_tiers(region, policy)):
        left = [
            m
            for m in eligible
            if m not in chosen and (countries is None or m.country.upper() in countries)
        ]
        if i == 0:
            chosen += _rank(left)
            own = len(chosen)
            continue
        if len(chosen) >= policy.min_pool:
            break
        take = _rank(left)[: policy.min_pool - len(chosen)]
        if take:
            chosen += take
            filled.append(f"{label} ({', '.join(m.name for m in take)})")
    if chosen:
        note = None
        if filled:
            note = (
                f"{own} eligible in {region.code or WORLD} (min_pool {policy.min_pool}): "
                "filled from " + ", then ".join(filled)
            )
        addresses = sorted({a for m in chosen for a in m.addresses})
        members = tuple(sorted(m.name for m in chosen))
        return RegionPool(region, Pool(LOCAL_POOL, tuple(addresses), members, note))
    if default_pool:
        pool = Pool(
            LOCAL_POOL,
            tuple(sorted(default_pool)),
            (),
            f"no eligible mirror anywhere: default pool for view {region.view}",
        )
        return RegionPool(region, pool)
    raise DnsSafetyError(
        f"db.local in view {region.view} would be empty and no default pool is configured: "
        "set [dns] default_pool in syncd.toml"
    )


def plan_local(
    mirrors: Sequence[MirrorEntry],
    policy: LocalPolicy,
    *,
    default_pool: Sequence[str] = (),
    countries: Iterable[str] = (),
    views: Iterable[str] = (),
) -> list[RegionPool]:
    """Return every view's db.local pool, in the views' order: the regions of the mirrors'
    countries and of `countries` (the inventory's, whatever its mirrors' state: a country
    whose only mirror is disabled keeps its view, filled from its fallback), and `views` (the
    views the server holds from before)."""
    every = {m.country for m in mirrors} | set(countries)
    return [region_pool(r, mirrors, policy, default_pool) for r in regions(every, policy, views)]


def local_zone(zone: str) -> str:
    """The zone each view holds db.local in: ``db.local.<zone>``."""
    return f"{LOCAL_POOL}.{zone}"


def view_zone_file(region: Region, zone: str) -> str:
    return f"{local_zone(zone)}.{region.view}.zone"


def initial_zone_text(zone: str, policy: LocalPolicy, ttl: int) -> str:
    """The starting content of a view's db.local zone file (its SOA and NS; syncd's updates
    add the addresses)."""
    return (
        f"$ORIGIN {local_zone(zone)}.\n$TTL {ttl}\n"
        f"@ IN SOA {policy.nameserver} {policy.hostmaster} 1 3600 600 86400 60\n"
        f"@ IN NS {policy.nameserver}\n"
    )


def named_conf(
    regions_: Sequence[Region],
    *,
    zone: str,
    key_name: str,
    policy: LocalPolicy,
    keys_file: str,
    zone_dir: str = "",
    geoip: bool = True,
) -> str:
    """Return the named.conf fragment: the view keys' include, the geoip-directory option to
    add, a first view that no client matches and that defines the main zone (updated with
    `key_name` as before), and one view per region sharing it with in-view (BIND delivers
    queries and updates to the one zone from every view). Each view holds its own db.local
    zone (own file and journal), updated with the view's own key, which also selects the view:
    every geo view refuses the other views' keys so that an update reaches only its view.

    Without a GeoIP2 database (`geoip` false; BIND refuses geoip ACLs it cannot answer) the
    views stay, matched by their keys alone: every client gets the default view, and syncd
    keeps every view's pool fresh all the same, ready for when the database is back."""
    check_conf_text(zone, "[dns] zone")
    check_conf_text(key_name, "[dns] key_name")
    check_conf_text(keys_file, "the keys file", path=True)
    if zone_dir:
        check_conf_text(zone_dir, "the zone directory", path=True)
    prefix = f"{zone_dir.rstrip('/')}/" if zone_dir else ""
    names = [r.key_name(key_name) for r in regions_]
    out = [
        f"// db.local by region: {len(regions_)} view(s), from syncd dns render --named-conf",
        f'// add to options {{ }}: geoip-directory "{policy.geoip_directory}";',
        f'include "{keys_file}";',
        'acl "pushsync-view-keys" { ' + " ".join(f'key "{n}";' for n in names) + " };",
    ]
    out += [
        f'view "{ZONE_VIEW}" {{',
        "    match-clients { none; };  // holds the zone for the views below (in-view)",
        f'    zone "{zone}" {{ type primary; file "{prefix}{policy.zone_file}"; '
        f'allow-update {{ key "{key_name}"; }}; }};',
        "};",
    ]
    for region in regions_:
        own = region.key_name(key_name)
        match = f'key "{own}";'
        if region.kind != "world" and geoip:
            match += f' !"pushsync-view-keys"; {region.match};'
        elif region.kind != "world":
            out.append(
                f"// no GeoIP2 database: {region.view} answers syncd only, not {region.match}"
            )
        else:
            match += " any;"
        out += [
            f'view "{region.view}" {{',
            f"    match-clients {{ {match} }};",
            f'    zone "{zone}" {{ in-view "{ZONE_VIEW}"; }};',
            f'    zone "{local_zone(zone)}" {{ type primary; '
            f'file "{prefix}{view_zone_file(region, zone)}"; '
            f'allow-update {{ key "{own}"; }}; }};',
            "};",
        ]
    return "\n".join(out) + "\n"


def key_statements(names: Sequence[str], algorithm: str, secret: str) -> str:
    """The named.conf ``key`` statements of the view keys (they share the update key's
    secret). Written to a file of mode 0600, never printed."""
    check_conf_text(algorithm, "[dns] key_algorithm")
    if not re.fullmatch(BASE64_PATTERN, secret):
        raise DnsSafetyError("the TSIG secret in [dns] key_secret_file is not base64: fix the file")
    for n in names:
        check_conf_text(n, "a view key name")
    return "".join(f'key "{n}" {{ algorithm {algorithm}; secret "{secret}"; }};\n' for n in names)
