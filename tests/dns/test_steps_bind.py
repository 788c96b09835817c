"""The DNS steps against a real BIND 9: the pools shrink before the TXT moves, the TXT waits
out the removed records' TTL, every pool the zone holds is managed, and one mirror's failure
keeps only that mirror out. Time is injected (a clock whose sleeps are recorded, not slept):
the order and the length of every wait are asserted, never the wall clock."""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devtools.harness.cvd import write_release
from devtools.harness.documents import lab_inventory, write_secret
from devtools.harness.named import Named, NamedSecondary
from devtools.harness.ports import free_port
from devtools.harness.record import record_served
from syncd.dns import gate
from syncd.dns import update as dnsupdate
from syncd.dns.plan import Change, DnsSafetyError
from syncd.dns.server import DnsServer, DnsUpdateError, read_held, send_update
from syncd.dns.steps import Step
from syncd.dns.update import Clock, update
from syncd.files import load_config, read_inventory, read_source_tree

OLD, NEW = 28034, 28035


@dataclass
class FakeClock:
    """Unix time that moves only when slept; every sleep recorded. A short sleep (a step
    asking a secondary again) also passes for real, so that the real servers can move on;
    a long one (a TTL waited out) does not."""

    t: float
    sleeps: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s
        if s <= 1:
            time.sleep(s)

    def clock(self) -> Clock:
        return Clock(self.now, self.sleep)


@dataclass
class Zone:
    tmp: Path
    named: Named
    mirrors: dict[str, tuple[str, str, bool]]  # name -> (address, country, active)

    @property
    def state(self) -> Path:
        return self.tmp / "state.sqlite"

    @property
    def source(self) -> Path:
        return self.tmp / "source"

    def write_inventory(self) -> None:
        (self.tmp / "inventory.toml").write_text(
            lab_inventory(
                [
                    {"name": n, "host": h, "country": c, "active": a}
                    for n, (h, c, a) in self.mirrors.items()
                ]
            )
        )

    def serve(self, daily: int, names: list[str], at: float) -> None:
        """`names` reported and were seen serving `daily` at `at`."""
        record_served(self.state, names, {"daily": daily, "main": 62, "bytecode": 335}, at)

    def update(self, clock: FakeClock, **kw: object) -> dnsupdate.DnsUpdate:
        cfg, _ = load_config(self.tmp / "syncd.toml")
        assert cfg.dns is not None
        return update(
            cfg,
            cfg.dns,
            inventory=read_inventory(self.tmp / "inventory.toml"),
            state=self.state,
            source=read_source_tree(self.source),
            dry_run=False,
            now=clock.now(),
            clock=clock.clock(),
            **kw,  # type: ignore[arg-type]
        )

    def txt_daily(self) -> int | None:
        [*txt] = self.named.dig("current.cvd", "TXT")
        return int(txt[0].strip('"').split(":")[2]) if txt else None


@pytest.fixture
def zone(tmp_path: Path) -> Iterator[Zone]:
    with Named(tmp_path / "named") as named:
        secret = tmp_path / "tsig.secret"
        secret.write_text(named.secret + "\n")
        secret.chmod(0o600)
        (tmp_path / "syncd.toml").write_text(f"""
[dns]
server = "{named.host}"
port = {named.port}
key_name = "{named.key_name}"
key_secret_file = "{secret}"
gate_share = 0.6
pool_ttl = 30
ttl = 300
""")
        z = Zone(
            tmp_path,
            named,
            {
                "pl1": ("127.0.1.1", "PL", True),
                "pl2": ("127.0.1.2", "PL", True),
                "de1": ("127.0.2.1", "DE", True),
                "nl1": ("127.0.3.1", "NL", True),
            },
        )
        z.write_inventory()
        write_release(z.source, OLD)
        yield z


def test_the_pools_shrink_settle_and_wait_out_their_ttl_before_the_txt_moves(zone: Zone) -> None:
    """Release OLD is announced with every mirror in rotation; NEW lands and pl2 never gets it.
    The gate opens (3 of 4): pl2 leaves db.pl first, then the TXT waits the TTL the removed
    record had (30 s, as BIND held it), then announces NEW. Proven to fail on the code before
    this change, which sent the TXT and the shrink in one update with no wait (sleeps == [])."""
    clock = FakeClock(2_000_000_000.0)
    zone.serve(OLD, list(zone.mirrors), clock.now())
    first = zone.update(clock)
    assert first.error is None and zone.txt_daily() == OLD
    assert zone.named.dig("db.pl", "A") == ["127.0.1.1", "127.0.1.2"]

    write_release(zone.source, NEW)
    clock.t += 600
    zone.serve(NEW, ["pl1", "de1", "nl1"], clock.now())
    before = len(clock.sleeps)
    result = zone.update(clock)
    assert result.error is None, result
    assert [r.step for r in result.steps] == [Step.SHRINK, Step.SETTLE, Step.SETTLE, Step.ANNOUNCE]
    assert zone.named.dig("db.pl", "A") == ["127.0.1.1"] and zone.txt_daily() == NEW
    assert clock.sleeps[before:] == [30.0]  # the held TTL, from the moment the shrink settled
    shrink, announce = result.steps[0], result.steps[-1]
    assert announce.at - shrink.at >= 30
    assert result.announced == (
        f"TXT {NEW} announced 30 s after the gate opened: the pools' TTL is 30 s"
    )
    rows = sqlite3.connect(zone.state).execute(
        "SELECT name, removed, held_ttl, settled_at FROM dns_changes WHERE removed != '' "
        "AND rdtype = 'A'"
    )
    assert sorted((n, r, t) for n, r, t, s in rows if s is not None) == [
        ("db.local", "127.0.1.2", 30),
        ("db.pl", "127.0.1.2", 30),
    ]


def test_while_the_gate_is_closed_mirrors_that_serve_the_announced_release_stay(
    zone: Zone,
) -> None:
    clock = FakeClock(2_000_000_000.0)
    zone.serve(OLD, list(zone.mirrors), clock.now())
    assert zone.update(clock).error is None
    write_release(zone.source, NEW)
    clock.t += 600
    zone.serve(NEW, ["pl1"], clock.now())  # 1 of 4: the gate stays closed
    result = zone.update(clock)
    assert result.gate is not None and not result.gate.reached
    assert zone.txt_daily() == OLD
    assert zone.named.dig("db.pl", "A") == ["127.0.1.1", "127.0.1.2"]
    assert zone.named.dig("db.de", "A") == ["127.0.2.1"]


def test_a_removal_from_an_earlier_run_still_holds_the_txt(zone: Zone) -> None:
    """A monitor pass took pl2 out 10 s ago (disabled; no TXT change); the publish that opens
    the gate now must still wait out the 20 s left of that removal's TTL."""
    clock = FakeClock(2_000_000_000.0)
    zone.serve(OLD, list(zone.mirrors), clock.now())
    assert zone.update(clock).error is None
    write_release(zone.source, NEW)
    clock.t += 600
    zone.serve(NEW, ["pl1", "de1"], clock.now())
    zone.mirrors["pl2"] = ("127.0.1.2", "PL", False)
    zone.write_inventory()
    rotation = zone.update(clock, announce=False)  # the monitor's pass: steps (a) and (b)
    assert [r.step for r in rotation.steps] == [Step.SHRINK, Step.SETTLE]
    assert zone.named.dig("db.pl", "A") == ["127.0.1.1"] and zone.txt_daily() == OLD
    clock.t += 10
    zone.serve(NEW, ["nl1"], clock.now())  # 3 of 3 active: the gate opens
    before = len(clock.sleeps)
    result = zone.update(clock)
    assert result.error is None and zone.txt_daily() == NEW
    # the TTL BIND held for db.pl when pl2 was removed (30 s, as the first update wrote it),
    # less the 10 s since the removal settled
    assert clock.sleeps[before:] == [20.0]


def test_a_country_whose_only_mirror_is_disabled_falls_back(zone: Zone) -> None:
    """nl1 is NL's only mirror; disabled, db.nl falls back to the best mirrors elsewhere
    instead of pointing at it for good (proven on the code before: db.nl kept 127.0.3.1)."""
    clock = FakeClock(2_000_000_000.0)
    zone.serve(OLD, list(zone.mirrors), clock.now())
    assert zone.update(clock).error is None
    assert zone.named.dig("db.nl", "A") == ["127.0.3.1"]
    zone.mirrors["nl1"] = ("127.0.3.1", "NL", False)
    zone.write_inventory()
    clock.t += 60
    assert zone.update(clock).error is None
    held = zone.named.dig("db.nl", "A")
    assert held and "127.0.3.1" not in held
    # deleted from the inventory altogether: the pool the zone holds is still managed
    del zone.mirrors["nl1"]
    zone.write_inventory()
    clock.t += 60
    assert zone.update(clock).error is None
    assert zone.named.dig("db.nl", "A") == held


def test_a_pool_syncd_never_wrote_is_read_back_and_managed_before_the_txt(zone: Zone) -> None:
    """The zone already holds db.fr, sent by hand before syncd's first push (the record is
    fresh: no change of syncd's names it; the inventory has no FR mirror). The push reads it
    back from the server (zone transfer), empties it to the fallback in the shrink step, and
    the TXT moves only once that change has settled and its TTL has passed. (Proven: with the
    read-back planted out, the pools taken from the record alone, db.fr kept 127.0.9.9 and the
    TXT was announced over it.)"""
    stranger = "127.0.9.9"
    primary = DnsServer(
        zone.named.host, zone.named.port, zone.named.zone, zone.named.key_name, zone.named.secret
    )
    send_update(primary, [Change("db.fr", "A", (stranger,), (), "by hand", ttl=45)])
    assert zone.named.dig("db.fr", "A") == [stranger]
    clock = FakeClock(2_000_000_000.0)
    zone.serve(OLD, list(zone.mirrors), clock.now())
    result = zone.update(clock)
    assert result.error is None, result
    held = zone.named.dig("db.fr", "A")
    assert held and stranger not in held  # the fallback: mirrors that serve the release
    assert set(held) <= {a for a, _, _ in zone.mirrors.values()}
    [fr] = [c for c in result.changes if c.name == "db.fr"]
    assert fr.remove == (stranger,) and fr.held_ttl == 45
    assert [r.step for r in result.steps] == [Step.SHRINK, Step.SETTLE, Step.SETTLE, Step.ANNOUNCE]
    assert zone.txt_daily() == OLD
    assert clock.sleeps and clock.sleeps[-1] == 45.0  # the stranger's TTL, waited out
    db = sqlite3.connect(zone.state)
    [(settled,)] = db.execute(
        "SELECT settled_at FROM dns_changes WHERE name = 'db.fr' AND removed = ?", (stranger,)
    ).fetchall()
    [(txt_at,)] = db.execute("SELECT at FROM dns_changes WHERE rdtype = 'TXT'").fetchall()
    db.close()
    assert settled is not None and txt_at >= settled + 45


def test_one_mirror_that_breaks_the_evidence_is_kept_out_alone(
    zone: Zone, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever goes wrong with one mirror's evidence keeps that mirror out of the rotation,
    never the rest (before: the exception ended the update, no pool and no TXT changed)."""
    real = gate.evidence

    def evidence(name: str, *a: object, **kw: object) -> object:
        if name == "pl2":
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return real(name, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(gate, "evidence", evidence)
    clock = FakeClock(2_000_000_000.0)
    zone.serve(OLD, list(zone.mirrors), clock.now())
    result = zone.update(clock)
    assert result.error is None and zone.txt_daily() == OLD  # 3 of 4 serve: the gate opens
    assert any(p.startswith("pl2: internal error: UnicodeEncodeError") for p in result.problems)
    assert zone.named.dig("db.pl", "A") == ["127.0.1.1"]
    assert zone.named.dig("db.de", "A") == ["127.0.2.1"]


def test_a_lagging_secondary_holds_the_txt_and_is_named(tmp_path: Path) -> None:
    """A secondary that keeps serving the old serial (held behind the primary): the settle step
    fails within settle_timeout_s naming it, the TXT stays; once it follows again, the next run
    announces. (On the code before, nothing asked the secondaries: the TXT moved at once.)"""
    port = free_port()
    with (
        Named(
            tmp_path / "named",
            also_notify=[("127.0.0.1", port)],
            allow_transfer=['key "pushsync-update"', "127.0.0.1"],  # the secondary by address
        ) as named,
        NamedSecondary(tmp_path / "sec", primary=named.address, port=port) as sec,
    ):
        write_secret(tmp_path / "tsig.secret", named.secret)
        (tmp_path / "syncd.toml").write_text(f"""
[dns]
server = "{named.host}"
port = {named.port}
key_name = "{named.key_name}"
key_secret_file = "{tmp_path / "tsig.secret"}"
gate_share = 0.6
pool_ttl = 30
secondaries = ["127.0.0.1:{port}"]
settle_timeout_s = 5
""")
        zone = Zone(tmp_path, named, {"pl1": ("127.0.1.1", "PL", True)})
        zone.write_inventory()
        write_release(zone.source, OLD)
        clock = FakeClock(2_000_000_000.0)
        zone.serve(OLD, ["pl1"], clock.now())
        sec.hold()
        held = zone.update(clock)
        assert held.error is not None and held.error.startswith("settle step failed: secondary")
        assert f"127.0.0.1:{port}" in held.error and zone.txt_daily() is None
        assert sum(clock.sleeps) == pytest.approx(5.0)  # it asked until the bound, then gave up
        sec.release()
        sec.wait_serial(named.serial() or 0)  # it follows again (in real time: the clock here
        clock.t += 60  # is the update's, injected)
        done = zone.update(clock)
        assert done.error is None, done.error
        assert zone.txt_daily() == OLD
        assert sec.query("current.cvd", "TXT").texts  # the secondary serves it too


def test_a_failing_resolver_on_this_host_sends_nothing(
    zone: Zone, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Most mirrors' names resolve to nothing at once: the fault is this host's resolver, not
    the mirrors, and the update refuses to empty the pools for it (stand-in for a resolver
    outage: getaddrinfo answers nothing for names). One unresolvable name alone is that
    mirror's problem."""
    clock = FakeClock(2_000_000_000.0)
    zone.serve(OLD, list(zone.mirrors), clock.now())
    assert zone.update(clock).error is None
    before = zone.named.dig("db.pl", "A")
    zone.mirrors = {n: (f"{n}.mirrors.example", c, a) for n, (_, c, a) in zone.mirrors.items()}
    zone.write_inventory()
    monkeypatch.setattr(socket, "getaddrinfo", _no_address)
    with pytest.raises(DnsSafetyError, match="4 of 4 mirrors' names have no address"):
        zone.update(clock)
    assert zone.named.dig("db.pl", "A") == before


def _no_address(*args: object, **kwargs: object) -> list[object]:
    raise OSError("Temporary failure in name resolution")


def test_a_server_that_refuses_a_read_is_an_error_not_an_empty_pool(zone: Zone) -> None:
    """REFUSED (here: a zone the server does not serve) is not "holds nothing": reading it
    would plan adds and no removals, or a second TXT value (on the code before, it read as
    empty)."""
    stranger = DnsServer(
        zone.named.host, zone.named.port, "example.org", zone.named.key_name, zone.named.secret
    )
    with pytest.raises(DnsUpdateError, match=r"answered REFUSED for db\.pl A"):
        read_held(stranger, [("db.pl", "A")])


def test_a_txt_stamped_later_than_now_is_not_moved_back_in_time(zone: Zone) -> None:
    """The heartbeat stamped the TXT after the publish's `now` (or the clocks disagree): the
    release is announced with the later time, never refused as going backwards (on the code
    before, the whole update, its shrink included, failed with DnsSafetyError)."""
    zone.serve(OLD, list(zone.mirrors), 2_000_000_000.0)
    assert zone.update(FakeClock(2_000_005_000.0)).error is None  # its TXT time: ahead
    write_release(zone.source, NEW)
    zone.serve(NEW, list(zone.mirrors), 2_000_000_100.0)
    result = zone.update(FakeClock(2_000_000_200.0))
    assert result.error is None and zone.txt_daily() == NEW
    [txt] = zone.named.dig("current.cvd", "TXT")
    assert int(txt.strip('"').split(":")[3]) == 2_000_005_000


def test_two_txt_values_are_refused_with_the_fix(zone: Zone) -> None:
    server = DnsServer(
        zone.named.host, zone.named.port, zone.named.zone, zone.named.key_name, zone.named.secret
    )
    values = ('"1.4.3:62:28034:1800000000:0:90:0:335"', '"1.4.3:62:28035:1800000000:0:90:0:335"')
    send_update(server, [Change("current.cvd", "TXT", values)])
    zone.serve(OLD, list(zone.mirrors), 2_000_000_000.0)
    with pytest.raises(DnsSafetyError, match="holds 2 TXT values"):
        zone.update(FakeClock(2_000_000_000.0))
