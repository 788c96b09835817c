"""The promise DNS keeps, checked as an invariant through db.local by region: a client is never
sent to a mirror that lacks what the TXT record announces, in any view.

Real parts: a BIND primary serving the views ``syncd dns render --named-conf`` writes (a GeoIP2
country database the test writes maps loopback sources to countries), two BIND caching
resolvers that ask it from a view's source address (New Zealand's, Germany's) and keep every
answer for its TTL; five mirrors, each a real nginx on its own loopback address; the real
``syncd dns push`` as a process.

The client (``tests.dns.invariant``) reads, every 100 ms, the TXT record and db.local of every
view three ways: signed with the view's key (the key selects the view), from a source address
the view matches, and through the caches; plus every pool from the default view. It keeps each
answer for its TTL and checks every address it holds against the newest daily announced.

Scenario: four releases; release 2 fails on pl2; release 3 fails on de1 while the cc-de view
refuses updates (``rndc freeze``: the TXT must hold) until it is thawed; release 4 comes with
NZ's only mirror disabled (it stays on its old tree). The check demands no violation.

Proven to fail on the code before the views were all managed (syncd/dns/ and syncd/cli/dns.py
of the commit before, in place): the push of release 4 left cc-nz and continent-oc out of the
plan, they kept nz1, and the test fails on cc-nz holding it; with that assertion taken out, the
client counted 120 violations in 4621 checks (from the cc-nz and continent-oc keys, the NZ and
AU source addresses and the NZ cache, all nz1 once the TXT announced release 4). On this code:
0 in about 3800 checks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools.harness.named import Named, NamedCache, TsigKey
from devtools.harness.ports import free_port
from tests.dns.invariant import Client, Fleet, Reader, mirrors_served, server_reader
from tests.dns.test_geo_bind import write_country_mmdb

pytestmark = pytest.mark.slow

FIRST = 28040
TTL = 2  # the pools' and the TXT's: short, so that the scenario waits seconds, not minutes
MIRRORS = {  # name -> (address, country)
    "pl1": ("127.0.32.1", "PL"),
    "pl2": ("127.0.32.2", "PL"),
    "de1": ("127.0.32.3", "DE"),
    "de2": ("127.0.32.4", "DE"),
    "nz1": ("127.0.32.5", "NZ"),
}
# the asker's source address -> (country, continent) in the test's GeoIP2 database
CLIENTS = {
    "127.62.0.1": ("PL", "EU"),
    "127.62.1.1": ("DE", "EU"),
    "127.62.2.1": ("NZ", "OC"),
    "127.62.3.1": ("AU", "OC"),  # no mirror: its continent's view
    "127.62.4.1": ("JP", "AS"),  # no view of its own: the world
}
DE_CLIENT, NZ_CLIENT = "127.62.1.1", "127.62.2.1"
POOLS = ["db.pl", "db.de", "db.nz", "db.local"]


@dataclass
class Views:
    fleet: Fleet
    named: Named
    geoip: Path

    def render(self) -> list[str]:
        """Write the views' named.conf (before BIND starts); return the views."""
        out = self.fleet.syncd("dns", "render", "--named-conf", str(self.named.workdir))
        assert out.returncode == 0, out.stdout + out.stderr
        conf = (self.named.workdir / "pushsync-views.conf").read_text()
        return [v for v in re.findall(r'^view "([^"]+)"', conf, re.M) if v != "pushsync-zone"]

    def key(self, view: str) -> TsigKey:
        return TsigKey(f"{self.named.key_name}-{view}", self.named.secret)

    def local(self, view: str) -> list[str]:
        """db.local as `view` holds it (read with its key)."""
        return list(self.named.query("db.local", "A", key=self.key(view)).texts)

    def txt_daily(self) -> int:
        [txt] = self.named.dig("current.cvd", "TXT")
        return int(txt.strip('"').split(":")[2])

    def push(self, *, code: int = 0) -> str:
        out = self.fleet.syncd("dns", "push")
        assert out.returncode == code, out.stdout + out.stderr
        return out.stderr


@pytest.fixture
def views(tmp_path: Path) -> Iterator[Views]:
    port = free_port()
    geoip = tmp_path / "geoip"
    write_country_mmdb(geoip / "GeoLite2-Country.mmdb", CLIENTS)
    work = tmp_path / "primary"
    named = Named(
        work,
        views_conf=work / "pushsync-views.conf",
        geoip_directory=geoip,
        default_ttl=TTL,
        negative_ttl=TTL,
    )
    with mirrors_served(tmp_path, MIRRORS, port, FIRST - 1) as fleet:
        secret = tmp_path / "tsig.secret"
        secret.write_text(named.secret + "\n")
        secret.chmod(0o600)
        fleet.config.write_text(f"""
inventory = "{tmp_path / "inventory.toml"}"
state = "{fleet.state}"
source_tree = "{tmp_path / "source"}"
[dns]
server = "{named.host}"
port = {named.port}
key_name = "{named.key_name}"
key_secret_file = "{secret}"
gate_share = 0.6
pool_ttl = {TTL}
ttl = {TTL}
settle_timeout_s = 20
[dns.local]
geoip_directory = "{geoip}"
fallback = ["continent", "world"]
min_pool = 2
""")
        try:
            yield Views(fleet, named, geoip)
        finally:
            named.stop()


def _key_reader(v: Views, view: str) -> Reader:
    key = v.key(view)
    return Reader(
        f"key {view}",
        lambda name, rdtype: v.named.query(name, rdtype, key=key, timeout=2.0),
        ("db.local",),
    )


def _source_reader(v: Views, source: str) -> Reader:
    return Reader(
        f"from {source}",
        lambda name, rdtype: v.named.query(name, rdtype, source=source, timeout=2.0),
        ("db.local",),
    )


def test_no_client_of_any_view_is_ever_sent_to_a_mirror_without_the_announced_release(
    views: Views, tmp_path: Path
) -> None:
    v, f = views, views.fleet
    f.release(FIRST)
    names = v.render()
    assert {"cc-pl", "cc-de", "cc-nz", "continent-eu", "continent-oc", "world"} == set(names)
    with (
        v.named,
        NamedCache(
            tmp_path / "cache-nz", forwarders=[v.named.address], query_source=NZ_CLIENT
        ) as cache_nz,
        NamedCache(
            tmp_path / "cache-de", forwarders=[v.named.address], query_source=DE_CLIENT
        ) as cache_de,
    ):
        v.push()
        assert v.txt_daily() == FIRST
        assert "127.0.32.5" in v.local("cc-nz")
        readers = [
            server_reader("default view", v.named, POOLS),
            *(_key_reader(v, view) for view in names),
            *(_source_reader(v, source) for source in CLIENTS),
            server_reader("cache cc-nz", cache_nz, ["db.local"]),
            server_reader("cache cc-de", cache_de, ["db.local"]),
        ]
        client = Client(readers, f.port)
        with client.running(linger_s=TTL + 1):  # it holds what it fetched, for its TTL
            # release 2: pl2's push fails while it is in rotation
            f.release(FIRST + 1, fail=("pl2",))
            v.push()
            assert v.txt_daily() == FIRST + 1
            assert "127.0.32.2" not in v.local("cc-pl")

            # release 3: de1's push fails, and the cc-de view refuses updates (frozen) while
            # it still lists de1: the shrink fails there, so the TXT holds
            f.release(FIRST + 2, fail=("de1",))
            v.named.freeze("db.local.clamav.net", view="cc-de")
            err = v.push(code=1)
            assert "shrink step failed: view cc-de" in err and "REFUSED" in err
            assert "the TXT record was not moved" in err
            assert v.txt_daily() == FIRST + 1
            assert "127.0.32.3" in v.local("cc-de")
            v.named.thaw("db.local.clamav.net", view="cc-de")
            v.push()
            assert v.txt_daily() == FIRST + 2
            assert "127.0.32.3" not in v.local("cc-de")

            # release 4: NZ's only mirror is disabled and stays on its old tree; de1 is back
            f.active["nz1"] = False
            f.write_inventory()
            f.release(FIRST + 3)
            v.push()
            assert v.txt_daily() == FIRST + 3
            for view in ("cc-nz", "continent-oc", "world"):
                assert "127.0.32.5" not in v.local(view), view
    assert client.error is None, repr(client.error)
    assert client.checks > 100  # the client really checked throughout
    assert client.violations == [], client.violations[:10]
