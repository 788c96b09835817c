"""DNS pools and the TXT record: planned purely, pushed to a real BIND 9 with TSIG, read back
with dig."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from devtools.harness.named import Named
from syncd.dns.plan import (
    LOCAL_POOL,
    DnsSafetyError,
    MirrorEntry,
    TxtRecord,
    check_txt,
    desired_records,
    diff,
    plan_pools,
)
from syncd.dns.server import DnsServer, DnsUpdateError, read_records, send_update

MIRRORS = [
    MirrorEntry("pl1.example", "PL", ("127.0.1.1", "fd00::1"), True, score=1.0),
    MirrorEntry("pl2.example", "PL", ("127.0.1.2",), False, "lagging"),
    MirrorEntry("de1.example", "DE", ("127.0.2.1",), True, score=0.5),
    MirrorEntry("fr1.example", "FR", ("127.0.3.1",), False, "removed"),
]
TXT = TxtRecord("1.4.3", 62, 28034, 1_800_000_000, 0, 90, 0, 335)
SOURCE = {"main": 62, "daily": 28034, "bytecode": 335}


def test_pools_hold_only_eligible_mirrors_and_fall_back() -> None:
    pools = {p.name: p for p in plan_pools(MIRRORS, fallback_count=1)}
    assert pools["db.pl"].addresses == ("127.0.1.1", "fd00::1")
    assert pools["db.de"].members == ("de1.example",)
    # France has no eligible mirror: the best-scored other one stands in, and it says so
    assert pools["db.fr"].members == ("de1.example",)
    assert pools["db.fr"].note and "no eligible mirror in FR" in pools["db.fr"].note
    assert pools[LOCAL_POOL].members == ("de1.example", "pl1.example")


def test_no_eligible_mirror_anywhere() -> None:
    none = [replace(m, eligible=False) for m in MIRRORS]
    with pytest.raises(DnsSafetyError, match="default_pool"):
        plan_pools(none)
    pools = plan_pools(none, default_pool=["127.0.9.9"])
    assert all(p.addresses == ("127.0.9.9",) for p in pools)


def test_txt_round_trip_and_safety() -> None:
    rendered = "1.4.3:62:28034:1800000000:0:90:0:335"  # rendered, never compared (noqa: date)
    assert TXT.render() == rendered
    assert TxtRecord.parse('"' + TXT.render() + '"') == TXT
    check_txt(TXT, None, SOURCE)
    with pytest.raises(DnsSafetyError, match="source tree has 28033"):
        check_txt(TXT, None, {**SOURCE, "daily": 28033})
    with pytest.raises(DnsSafetyError, match="backwards: daily 28035 -> 28034"):
        check_txt(TXT, replace(TXT, daily=28035), SOURCE)
    with pytest.raises(DnsSafetyError, match="8 fields"):
        TxtRecord.parse("1.0:62")


def test_diff_only_what_differs() -> None:
    want = desired_records(plan_pools(MIRRORS), TXT)
    assert diff(want, want) == []
    have = dict(want)
    have[("db.pl", "A")] = ("127.0.1.1", "127.0.1.2")
    changes = diff(want, have)
    assert [(c.name, c.rdtype, c.add, c.remove) for c in changes] == [
        ("db.pl", "A", (), ("127.0.1.2",))
    ]


@pytest.fixture
def named(tmp_path: Path) -> Iterator[Named]:
    with Named(tmp_path / "named") as server:
        yield server


def _server(n: Named, secret: str | None = None) -> DnsServer:
    return DnsServer(n.host, n.port, n.zone, n.key_name, secret or n.secret)


def test_push_query_and_idempotent_second_push(named: Named) -> None:
    server = _server(named)
    want = desired_records(plan_pools(MIRRORS, fallback_count=1), TXT)
    changes = diff(want, read_records(server, list(want)))
    assert send_update(server, changes) > 0
    assert named.dig("db.pl", "A") == ["127.0.1.1"]
    assert named.dig("db.pl", "AAAA") == ["fd00::1"]
    assert named.dig("db.fr", "A") == ["127.0.2.1"]
    assert named.dig("current.cvd", "TXT") == [f'"{TXT.render()}"']
    # nothing changed: nothing to send
    assert diff(want, read_records(server, list(want))) == []

    # pl1 stops qualifying: db.pl falls back, and only the difference goes out
    later = [replace(MIRRORS[0], eligible=False), *MIRRORS[1:]]
    want2 = desired_records(plan_pools(later, fallback_count=1), TXT)
    changes2 = diff(want2, read_records(server, list(want2)))
    assert {(c.name, c.rdtype) for c in changes2} == {
        ("db.pl", "A"),
        ("db.pl", "AAAA"),
        ("db.local", "A"),
        ("db.local", "AAAA"),
    }
    send_update(server, changes2)
    assert named.dig("db.pl", "A") == ["127.0.2.1"]
    assert named.dig("db.pl", "AAAA") == []


def test_wrong_tsig_key_is_a_clear_permanent_error(named: Named) -> None:
    bad = _server(named, secret="c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1rZXk=")
    want = desired_records(plan_pools(MIRRORS), TXT)
    with pytest.raises(DnsUpdateError, match="rejected TSIG key 'pushsync-update'") as err:
        send_update(bad, diff(want, {}))
    assert not err.value.retryable
    assert "c2VjcmV0" not in str(err.value)
    assert named.dig("db.pl", "A") == []


def test_unreachable_server_is_retryable(named: Named) -> None:
    gone = replace(_server(named), port=1, timeout_s=1.0)
    with pytest.raises(DnsUpdateError) as err:
        send_update(gone, diff(desired_records(plan_pools(MIRRORS), TXT), {}))
    assert err.value.retryable
