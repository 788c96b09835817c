"""The DNS steps' pure rules (syncd.dns.steps), the outage guard (syncd.monitor.outage) and
what may go into a pool (syncd.dns.plan.rdata_address), as properties."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.dns.plan import (
    DnsSafetyError,
    MirrorEntry,
    plan_pools,
    pool_addresses,
    rdata_address,
)
from syncd.dns.steps import (
    HeldSet,
    Removal,
    announce_not_before,
    explain_wait,
    pool_changes,
    removes,
    serial_newer,
    target_versions,
)
from syncd.monitor.outage import MIN_FAILED, suspicion, suspicion_mail

T0 = 1_000_000.0  # an arbitrary instant: these rules never read a clock


@given(st.lists(st.tuples(st.floats(0, 1e6, allow_nan=False), st.integers(0, 86_400)), max_size=20))
def test_the_txt_waits_for_every_removal(removals: list[tuple[float, int]]) -> None:
    """No removal's records may still live in a cache once the TXT moves."""
    at = announce_not_before(Removal(t, ttl) for t, ttl in removals)
    assert all(at >= t + ttl for t, ttl in removals)
    assert at == (max((t + ttl for t, ttl in removals), default=0.0))


def test_pool_changes_carry_the_held_ttl_and_the_new_one() -> None:
    held = {("db.pl", "A"): HeldSet(("127.0.1.1", "127.0.1.2"), 300)}
    [change] = pool_changes({("db.pl", "A"): ("127.0.1.1",)}, held, ttl=60, view="cc-pl")
    assert (change.remove, change.add, change.held_ttl, change.ttl, change.view) == (
        ("127.0.1.2",),
        (),
        300,
        60,
        "cc-pl",
    )
    assert removes([change])
    assert pool_changes({("db.pl", "A"): ("127.0.1.1", "127.0.1.2")}, held, ttl=60) == []
    [grow] = pool_changes({("db.de", "A"): ("127.0.2.1",)}, {}, ttl=60)
    assert not removes([grow])  # adding a mirror that serves the release needs no wait


def test_the_pools_follow_what_the_txt_will_announce() -> None:
    release, announced = {"daily": 28035}, {"daily": 28034}
    # the gate is closed: a mirror still serving the announced 28034 stays in rotation
    assert target_versions(release, announced, gate_open=False) == announced
    # the gate opens: the pools shrink to the release before the TXT announces it
    assert target_versions(release, announced, gate_open=True) == release
    assert target_versions(release, None, gate_open=False) == release


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**31 - 1))
def test_serial_arithmetic_wraps(serial: int, step: int) -> None:
    later = (serial + step) % 2**32
    assert serial_newer(later, serial)
    if step:
        assert not serial_newer(serial, later)


def test_the_wait_is_explained_with_its_ttl_and_the_version() -> None:
    text = explain_wait(T0, T0 + 61, T0 + 60, 60, 60, daily=28035)
    assert text == "TXT 28035 announced 61 s after the gate opened: the pools' TTL is 60 s"
    assert explain_wait(T0, T0 + 1, 0.0, 60, 0, daily=28035) == (
        "TXT 28035 announced 1 s after the gate opened (no removal to wait out)"
    )
    assert explain_wait(T0, T0 + 300, T0 + 300, 60, 300, daily=28036) == (
        "TXT 28036 announced 300 s after the gate opened: the removed records' TTL is 300 s "
        "([dns] pool_ttl is 60 s: records added from now on)"
    )


def test_a_pool_the_zone_holds_is_never_left_behind() -> None:
    """db.nl is held by the server but its only mirror is gone from the inventory: it falls
    back like any country without an eligible mirror (it failed on the code before: only
    countries of active mirrors were planned)."""
    de = MirrorEntry("de1", "DE", ("127.0.2.1",), True, score=1.0)
    pools = {p.name: p for p in plan_pools([de], countries={"nl"})}
    assert pools["db.nl"].addresses == ("127.0.2.1",)
    assert pools["db.nl"].note and "no eligible mirror in NL" in pools["db.nl"].note


@given(st.ip_addresses(), st.booleans())
def test_only_addresses_a_client_can_use_go_into_a_pool(
    ip: ipaddress._BaseAddress, lab: bool
) -> None:
    """Never unspecified, multicast, link-local, reserved or IPv4-mapped; loopback, private
    and the other non-global ranges only in a lab (the inventory's allow_private_addresses)."""
    bad = (
        ip.is_unspecified
        or ip.is_multicast
        or ip.is_link_local
        or (ip.is_reserved and not ip.is_loopback)
        or (isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None)
        or not (lab or ip.is_global)
    )
    if bad:
        with pytest.raises(DnsSafetyError):
            rdata_address(str(ip), allow_private=lab)
    else:
        assert rdata_address(str(ip), allow_private=lab) == str(ip)


@pytest.mark.parametrize("text", ["fe80::1%lo", "0.0.0.0", "::", "::ffff:127.0.0.1", "x", ""])
def test_hostile_addresses_are_refused(text: str) -> None:
    with pytest.raises(DnsSafetyError):
        rdata_address(text, allow_private=True)


GLOBAL = "193.0.6.139"  # a global unicast address
GLOBAL6 = "2001:67c:2e8:22::c100:68b"


def test_a_name_resolving_to_loopback_keeps_that_mirror_alone_out_of_the_pools() -> None:
    """Resolved names: one to 127.0.0.1 (and ::1), one to global addresses. Outside a lab the
    first has no address a pool may list, with the reason; the second keeps both of its; in
    a lab (allow_private_addresses) loopback is listed, as registration accepts it there."""
    resolved = {"loop.example": ["127.0.0.1", "::1"], "good.example": [GLOBAL, GLOBAL6]}
    out = {n: pool_addresses(a) for n, a in resolved.items()}
    assert out["good.example"] == ((GLOBAL, GLOBAL6), [])
    addrs, notes = out["loop.example"]
    assert addrs == () and len(notes) == 2
    assert notes[0].startswith("'127.0.0.1' is a loopback address: write the mirror's global")
    assert "allow_private_addresses = true" in notes[0]
    entries = [
        MirrorEntry(n, "PL", out[n][0], True, score=1.0) for n in ("loop.example", "good.example")
    ]
    (pool,) = [p for p in plan_pools(entries, countries={"pl"}) if p.name == "db.pl"]
    assert pool.addresses == (GLOBAL, GLOBAL6)
    assert pool_addresses(resolved["loop.example"], allow_private=True) == (
        ("127.0.0.1", "::1"),
        [],
    )


def test_a_private_address_among_global_ones_is_dropped_alone() -> None:
    addrs, notes = pool_addresses([GLOBAL, "10.1.2.3", "fe80::1"])
    assert addrs == (GLOBAL,)
    assert [n.split(" ", 1)[0] for n in notes] == ["'10.1.2.3'", "'fe80::1'"]


def _pass(failing: int, total: int, family: str = "IPv4") -> list[tuple[str, str, bool]]:
    return [(f"m{i}", family, i >= failing) for i in range(total)]


def test_the_guard_trips_on_most_of_the_fleet_not_on_a_few() -> None:
    assert suspicion(_pass(6, 10), 0.5) is not None
    assert suspicion(_pass(5, 10), 0.5) is None  # half is not more than half
    assert suspicion(_pass(1, 1), 0.5) is None  # one mirror down is that mirror's problem
    assert suspicion(_pass(MIN_FAILED, MIN_FAILED), 0.5) is not None
    # a monitor without IPv6: every IPv6 check fails while IPv4 is fine
    both = _pass(0, 10) + _pass(10, 10, "IPv6")
    reason = suspicion(both, 0.5)
    assert reason is not None and "IPv6" in reason


@given(
    st.lists(
        st.tuples(st.sampled_from("abcdefgh"), st.sampled_from(["IPv4", "IPv6"]), st.booleans())
    )
)
def test_the_guard_never_trips_while_most_checks_pass(
    checks: list[tuple[str, str, bool]],
) -> None:
    per: dict[str, dict[str, bool]] = {}
    for mirror, family, ok in checks:
        per.setdefault(family, {})
        per[family][mirror] = per[family].get(mirror, True) and ok
    if all(sum(not ok for ok in m.values()) * 2 <= len(m) for m in per.values()):
        assert suspicion(checks, 0.5) is None


def test_the_team_hears_of_it_once_in_plain_words() -> None:
    mail = suspicion_mail("8 of 10 mirrors failed", ["team@example.org"], T0)
    assert mail is not None and mail.to == ("team@example.org",)
    assert "suspects itself" in mail.subject and "takes no mirror out" in mail.body
    assert suspicion_mail("x", [], T0) is None
