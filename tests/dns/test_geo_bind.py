"""db.local by region against the real BIND 9: the views syncd renders, a GeoIP2 country
database the test writes itself (mmdb-writer) mapping loopback sources to countries, ``dig -b``
from those sources, and ``syncd dns push`` keeping every view's pool to the fresh mirrors."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet
from typer.testing import CliRunner

from devtools.harness.cvd import write_release
from devtools.harness.documents import LAB_INVENTORY, write_secret
from devtools.harness.named import Named
from syncd.cli import app
from syncd.dns.server import DnsServer, DnsUpdateError, read_records
from tests.dns.test_dns_cli import KEY, RELEASE, _published, checked

MIRRORS = [  # name, address, country
    ("pl1.example", "127.0.1.1", "PL"),
    ("de1.example", "127.0.2.1", "DE"),
    ("de2.example", "127.0.2.2", "DE"),
    ("us1.example", "127.0.3.1", "US"),
    ("fr1.example", "127.0.4.1", "FR"),
]
# the asker's source address -> (country, continent) in the test's GeoIP2 database
CLIENTS = {
    "127.60.0.1": ("PL", "EU"),
    "127.60.1.1": ("DE", "EU"),
    "127.60.2.1": ("US", "NA"),
    "127.60.3.1": ("FR", "EU"),
    "127.60.4.1": ("CZ", "EU"),  # no mirror; a neighbour of DE and PL
    "127.60.5.1": ("NO", "EU"),  # no mirror, nor a neighbour with one: its continent
    "127.60.6.1": ("JP", "AS"),  # no mirror on its continent: the world
}
A = {name: address for name, address, _ in MIRRORS}


def ips(*names: str) -> list[str]:
    return sorted(A[f"{n}.example"] for n in names)


def write_country_mmdb(path: Path, clients: dict[str, tuple[str, str]]) -> Path:
    """A GeoIP2-Country-shaped database: each address (a /32) with its country's ISO code and
    its continent's code, the two fields BIND's `geoip country` and `geoip continent` read."""
    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="GeoLite2-Country",
        languages=["en"],
        description="pushsync test countries",
    )
    for address, (country, continent) in clients.items():
        writer.insert_network(
            IPSet([f"{address}/32"]),
            {"country": {"iso_code": country}, "continent": {"code": continent}},
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.to_db_file(str(path))
    return path


@dataclass
class Geo:
    config: Path
    named: Named
    state: Path
    tmp: Path


def _config(tmp: Path, named: Named, geoip: Path, inventory: Path, source: Path) -> Path:
    secret = tmp / "tsig.secret"
    write_secret(secret, named.secret + "\n")
    config = tmp / "syncd.toml"
    config.write_text(f"""
inventory = "{inventory}"
state = "{tmp / "state.sqlite"}"
source_tree = "{source}"
[dns]
server = "{named.host}"
port = {named.port}
key_name = "{named.key_name}"
key_secret_file = "{secret}"
gate_share = 0.5
ttl = 1
pool_ttl = 1
[dns.local]
geoip_directory = "{geoip}"
min_pool = 2
""")
    return config


@pytest.fixture
def geo(tmp_path: Path) -> Iterator[Geo]:
    source = tmp_path / "source"
    write_release(source, RELEASE["daily"])
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(
        LAB_INVENTORY
        + "".join(
            f'[[mirrors]]\nname = "{n}"\nhost = "{h}"\ncountry = "{c}"\nhost_keys = ["{KEY}"]\n\n'
            for n, h, c in MIRRORS
        )
    )
    geoip = tmp_path / "geoip"
    write_country_mmdb(geoip / "GeoLite2-Country.mmdb", CLIENTS)
    work = tmp_path / "named"
    named = Named(work, views_conf=work / "pushsync-views.conf", geoip_directory=geoip)
    config = _config(tmp_path, named, geoip, inventory, source)
    try:
        yield Geo(config, named, tmp_path / "state.sqlite", tmp_path)
    finally:
        named.stop()


def _run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


def _local(named: Named) -> dict[str, list[str]]:
    """db.local as each client sees it."""
    return {src: named.dig("db.local", "A", source=src) for src in CLIENTS}


def _fresh(state: Path, ok: dict[str, bool]) -> None:
    _published(state, ok)
    checked(state, [n for n, good in ok.items() if good])


def test_db_local_answers_by_the_askers_country_and_falls_back(geo: Geo) -> None:
    # only pl1 serves the release when named.conf is rendered
    _fresh(geo.state, {"pl1.example": True})
    code, out, err = _run(
        "dns", "render", "--config", str(geo.config), "--named-conf", str(geo.named.workdir)
    )
    assert code == 0, out + err
    assert 'view "cc-pl" (geoip country PL): pl1.example' in out
    assert 'view "continent-eu" (geoip continent EU)' in out
    assert 'view "world" (any): pl1.example' in out
    assert "warning" not in err
    keys = geo.named.workdir / "pushsync-view-keys.conf"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert geo.named.secret not in out + err  # the secret is written, never printed

    with geo.named:
        # the zone files render wrote already hold the pools of that moment
        assert geo.named.dig("db.local", "A", source="127.60.1.1") == ips("pl1")
        # every mirror but fr1 serves the release now; push brings each view in line
        _fresh(
            geo.state,
            {"de1.example": True, "de2.example": True, "us1.example": True, "fr1.example": False},
        )
        code, out, err = _run("dns", "push", "--json", "--config", str(geo.config))
        assert code == 0, out + err
        result = json.loads(out)
        assert result["error"] is None and result["sent"]
        assert {c["view"] for c in result["changes"]} >= {"cc-de", "cc-us", "world"}
        seen = _local(geo.named)
        assert seen["127.60.0.1"] == ips("de1", "pl1")  # PL + neighbour
        assert seen["127.60.1.1"] == ips("de1", "de2")  # DE: its own two
        assert seen["127.60.2.1"] == ips("de1", "us1")  # US + the world
        assert seen["127.60.3.1"] == ips("de1", "de2")  # FR stale: neighbours
        assert seen["127.60.4.1"] == ips("de1", "de2")  # CZ: neighbours
        assert seen["127.60.5.1"] == ips("pl1", "de1", "de2")
        everyone = ips("pl1", "de1", "de2", "us1")
        assert seen["127.60.6.1"] == everyone  # JP: no Asian view, the world
        assert geo.named.dig("db.local", "A", source="127.0.0.1") == everyone  # not in the db
        # the rest of the zone is one zone for every view
        assert geo.named.dig("db.de", "A", source="127.60.2.1") == ips("de1", "de2")
        assert geo.named.dig("db.de", "A", source="127.60.0.1") == ips("de1", "de2")

        code, out, _ = _run("dns", "push", "--json", "--config", str(geo.config))
        assert code == 0 and json.loads(out)["changes"] == []  # idempotent, every view
        # a view key named.conf does not have: a clear, permanent error on the signed read
        stranger = DnsServer(
            geo.named.host,
            geo.named.port,
            geo.named.zone,
            "pushsync-update-cc-xx",
            geo.named.secret,
            sign_queries=True,
        )
        with pytest.raises(DnsUpdateError, match="rejected TSIG key 'pushsync-update-cc-xx'") as e:
            read_records(stranger, [("db.local", "A")])
        assert not e.value.retryable

        # Germany's mirrors stop serving the release: DE falls back as the policy says
        _fresh(geo.state, {"de1.example": False, "de2.example": False})
        code, out, _ = _run("dns", "push", "--dry-run", "--config", str(geo.config))
        assert code == 0, out
        assert "would change db.local [view cc-de] A: +['127.0.1.1', '127.0.3.1']" in out
        assert "1 eligible in PL (min_pool 2): filled from world (us1.example)" in out
        code, out, err = _run("dns", "push", "--json", "--config", str(geo.config))
        assert code == 0, out + err
        seen = _local(geo.named)
        assert seen["127.60.1.1"] == ips("pl1", "us1")  # neighbour, world
        assert seen["127.60.0.1"] == ips("pl1", "us1")  # PL: own + world
        assert seen["127.60.2.1"] == ips("pl1", "us1")


def test_without_a_geoip_database_only_the_default_view(geo: Geo) -> None:
    (geo.tmp / "geoip" / "GeoLite2-Country.mmdb").unlink()
    _fresh(geo.state, {"pl1.example": True})
    code, out, err = _run(
        "dns", "render", "--config", str(geo.config), "--named-conf", str(geo.named.workdir)
    )
    assert code == 0, out + err
    assert "warning: no GeoIP2 country database in" in err
    assert "db.local is the default view only" in err
    assert "; warning: no GeoIP2 country database" in out
    conf = (geo.named.workdir / "pushsync-views.conf").read_text()
    assert 'match-clients { key "pushsync-update-cc-pl"; };' in conf
    with geo.named:  # BIND refuses geoip ACLs without a database: this config loads
        _fresh(geo.state, {n: n != "fr1.example" for n, _, _ in MIRRORS})
        code, out, err = _run("dns", "push", "--json", "--config", str(geo.config))
        assert code == 0, out + err
        everyone = ips("pl1", "de1", "de2", "us1")
        for source in CLIENTS:  # every client: the default view
            assert geo.named.dig("db.local", "A", source=source) == everyone
        # the other views are kept fresh all the same, ready for the database's return
        assert {c["view"] for c in json.loads(out)["changes"]} >= {"cc-de", "cc-pl", "world"}
        pl = DnsServer(
            geo.named.host,
            geo.named.port,
            geo.named.zone,
            "pushsync-update-cc-pl",
            geo.named.secret,
            sign_queries=True,
        )
        assert read_records(pl, [("db.local", "A")])[("db.local", "A")] == tuple(ips("de1", "pl1"))


def test_view_keys_file_is_not_followed_through_a_symlink(geo: Geo) -> None:
    """A symlink where the view keys go is replaced by the keys file (0600), never followed:
    the secret lands only where it is meant to, and the link's target is untouched."""
    target = geo.tmp / "elsewhere"
    target.write_text("keep\n")
    geo.named.workdir.mkdir(parents=True, exist_ok=True)
    keys = geo.named.workdir / "pushsync-view-keys.conf"
    os.symlink(target, keys)
    _fresh(geo.state, {"pl1.example": True})
    code, out, err = _run(
        "dns", "render", "--config", str(geo.config), "--named-conf", str(geo.named.workdir)
    )
    assert code == 0, out + err
    assert target.read_text() == "keep\n"
    assert not keys.is_symlink() and stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert geo.named.secret in keys.read_text()
    assert geo.named.secret not in out + err


def test_a_view_that_refuses_its_update_holds_the_txt(geo: Geo) -> None:
    """A view's db.local update refused (its zone frozen): the shrink step fails, naming the
    view, and the TXT stays on the release it announced. (On the code before, the TXT moved
    first and the frozen view kept handing out a mirror without the release.)"""
    _fresh(geo.state, {n: True for n, _, _ in MIRRORS})
    code, out, err = _run(
        "dns", "render", "--config", str(geo.config), "--named-conf", str(geo.named.workdir)
    )
    assert code == 0, out + err
    with geo.named:
        code, out, err = _run("dns", "push", "--json", "--config", str(geo.config))
        assert code == 0, out + err
        [before] = geo.named.dig("current.cvd", "TXT")
        # the next release: de1 does not get it, so the DE view must drop it first
        write_release(geo.tmp / "source", RELEASE["daily"] + 1)
        newer = {**RELEASE, "daily": RELEASE["daily"] + 1}
        _published(geo.state, {n: n != "de1.example" for n, _, _ in MIRRORS}, release=newer)
        checked(geo.state, [n for n, _, _ in MIRRORS if n != "de1.example"], release=newer)
        geo.named.freeze("db.local.clamav.net", view="cc-de")
        code, out, err = _run("dns", "push", "--config", str(geo.config))
        assert code == 1, out + err
        assert "shrink step failed: view cc-de:" in err and "REFUSED" in err
        assert geo.named.dig("current.cvd", "TXT") == [before]
        assert A["de1.example"] in geo.named.dig("db.local", "A", source="127.60.1.1")
        geo.named.thaw("db.local.clamav.net", view="cc-de")
        code, out, err = _run("dns", "push", "--config", str(geo.config))
        assert code == 0, out + err
        assert A["de1.example"] not in geo.named.dig("db.local", "A", source="127.60.1.1")
        [after] = geo.named.dig("current.cvd", "TXT")
        assert after.strip('"').split(":")[2] == str(RELEASE["daily"] + 1)


NZ = ("nz1.example", "127.0.5.1", "NZ")
NZ_CLIENT = "127.60.7.1"


def _inventory(geo: Geo, extra: str) -> None:
    (geo.tmp / "inventory.toml").write_text(
        LAB_INVENTORY
        + "".join(
            f'[[mirrors]]\nname = "{n}"\nhost = "{h}"\ncountry = "{c}"\nhost_keys = ["{KEY}"]\n\n'
            for n, h, c in MIRRORS
        )
        + extra
    )


def _nz(active: bool) -> str:
    name, host, country = NZ
    return (
        f'[[mirrors]]\nname = "{name}"\nhost = "{host}"\ncountry = "{country}"\n'
        f'host_keys = ["{KEY}"]\nactive = {str(active).lower()}\n\n'
    )


def _view_local(geo: Geo, view: str) -> list[str]:
    """db.local as `view` holds it, read signed with the view's key (the key selects it)."""
    server = DnsServer(
        geo.named.host,
        geo.named.port,
        geo.named.zone,
        f"pushsync-update-{view}",
        geo.named.secret,
        sign_queries=True,
    )
    return list(read_records(server, [("db.local", "A")])[("db.local", "A")])


def test_a_view_whose_only_mirror_is_disabled_or_deleted_is_emptied_before_the_txt(
    geo: Geo,
) -> None:
    """NZ's only mirror disabled: cc-nz and continent-oc lose it (filled from their
    fallback), and the TXT moves only after; then, enabled again and deleted from the
    inventory, the views named.conf was rendered with still lose it. (Proven: on the code
    before, with the regions taken from the active mirrors alone, cc-nz and continent-oc
    were not planned and kept 127.0.5.1 while the TXT moved on.)"""
    everyone = {**{n: True for n, _, _ in MIRRORS}, NZ[0]: True}
    _inventory(geo, _nz(True))
    write_country_mmdb(
        geo.tmp / "geoip" / "GeoLite2-Country.mmdb", {**CLIENTS, NZ_CLIENT: ("NZ", "OC")}
    )
    _fresh(geo.state, everyone)
    code, out, err = _run(
        "dns", "render", "--config", str(geo.config), "--named-conf", str(geo.named.workdir)
    )
    assert code == 0, out + err
    assert 'view "cc-nz" (geoip country NZ): de1.example, nz1.example' in out
    with geo.named:
        code, out, err = _run("dns", "push", "--config", str(geo.config))
        assert code == 0, out + err
        assert NZ[1] in _view_local(geo, "cc-nz")
        assert NZ[1] in geo.named.dig("db.local", "A", source=NZ_CLIENT)
        [before] = geo.named.dig("current.cvd", "TXT")

        # the next release; NZ's only mirror is disabled and stays on the old one
        newer = {**RELEASE, "daily": RELEASE["daily"] + 1}
        write_release(geo.tmp / "source", newer["daily"])
        _inventory(geo, _nz(False))
        rest = {n: True for n, _, _ in MIRRORS}
        _published(geo.state, rest, release=newer)
        checked(geo.state, list(rest), release=newer)
        code, out, err = _run("dns", "push", "--json", "--config", str(geo.config))
        assert code == 0, out + err
        result = json.loads(out)
        assert {"cc-nz", "continent-oc"} <= {c["view"] for c in result["changes"]}
        for view in ("cc-nz", "continent-oc", "world"):
            assert NZ[1] not in _view_local(geo, view), view
        assert _view_local(geo, "cc-nz") == ips("de1", "de2")  # the world's best two
        assert geo.named.dig("db.local", "A", source=NZ_CLIENT) == ips("de1", "de2")
        [after] = geo.named.dig("current.cvd", "TXT")
        assert after != before and after.strip('"').split(":")[2] == str(newer["daily"])
        # the TXT moved only after the views had dropped nz1 and every server served that
        db = sqlite3.connect(geo.state)
        txt_at = db.execute(
            "SELECT MAX(at) FROM dns_changes WHERE rdtype = 'TXT' AND outcome = 'sent'"
        ).fetchone()[0]
        dropped = db.execute(
            "SELECT view, settled_at FROM dns_changes WHERE removed LIKE ? AND outcome = 'sent'",
            (f"%{NZ[1]}%",),
        ).fetchall()
        db.close()
        assert {"cc-nz", "continent-oc", "world"} <= {v for v, _ in dropped}
        assert all(s is not None and s <= txt_at for _, s in dropped), (dropped, txt_at)

        # nz1 back in rotation, then deleted from the inventory before named.conf is rendered
        # again: the views BIND still holds (as named.conf was rendered) are managed all the same
        _inventory(geo, _nz(True))
        _published(geo.state, {**rest, NZ[0]: True}, release=newer)
        checked(geo.state, [*rest, NZ[0]], release=newer)
        code, out, err = _run("dns", "push", "--config", str(geo.config))
        assert code == 0, out + err
        assert NZ[1] in _view_local(geo, "cc-nz")
        _inventory(geo, "")
        code, out, err = _run("dns", "push", "--json", "--config", str(geo.config))
        assert code == 0, out + err
        for view in ("cc-nz", "continent-oc", "world"):
            assert NZ[1] not in _view_local(geo, view), view
        assert geo.named.dig("db.local", "A", source=NZ_CLIENT) == ips("de1", "de2")
        # named.conf rendered again without NZ and reloaded: cc-nz is gone from BIND (its key
        # with it), so no client can reach it; the push leaves it out and goes on
        code, out, err = _run(
            "dns", "render", "--config", str(geo.config), "--named-conf", str(geo.named.workdir)
        )
        assert code == 0 and 'view "cc-nz"' not in out, out + err
        geo.named.rndc("reconfig")
        with pytest.raises(DnsUpdateError, match="rejected TSIG key"):
            _view_local(geo, "cc-nz")
        code, out, err = _run("dns", "push", "--config", str(geo.config))
        assert code == 0, out + err
        world = ips("pl1", "de1", "de2", "us1", "fr1")
        assert geo.named.dig("db.local", "A", source=NZ_CLIENT) == world  # the default view
