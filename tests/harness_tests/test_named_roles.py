"""The three BIND roles are the real thing: a secondary that follows the primary by NOTIFY and
zone transfer (and lags on demand), a cache that holds an answer for its TTL and no longer,
and ``rndc freeze``/``thaw`` of a zone and of a view's zone.

How each was proven able to fail: the secondary test failed (the serial stayed behind: a
TimeoutError) with ``also_notify`` left out of the primary, and the hold assertion failed
with `hold()` made a no-op; the cache test failed with ``max-cache-ttl 0`` planted in
`NamedCache` (the new answer came at once); the freeze tests failed with `freeze()` made
a no-op (NOERROR instead of REFUSED)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.name
import dns.query
import dns.rcode
import dns.update
import pytest

from devtools.harness.named import Named, NamedCache, NamedSecondary, TsigKey
from devtools.harness.ports import free_port


def _update(
    server: Named,
    name: str,
    address: str,
    *,
    ttl: int = 300,
    key: TsigKey | None = None,
    zone: str | None = None,
) -> str:
    """Replace `name`'s A set with `address` in one RFC 2136 update signed with `key` (the
    primary's update key by default), as syncd sends it; return the answer's rcode."""
    key = key or server.key
    update = dns.update.UpdateMessage(
        zone or server.zone,
        keyring=key.keyring(),
        keyname=dns.name.from_text(key.name),
        keyalgorithm=key.algorithm,
    )
    update.replace(dns.name.from_text(name, dns.name.from_text(server.zone)), ttl, "A", address)
    response = dns.query.tcp(update, server.host, port=server.port, timeout=5)
    return str(dns.rcode.to_text(response.rcode()))


@pytest.fixture
def primary_and_secondary(tmp_path: Path) -> Iterator[tuple[Named, NamedSecondary]]:
    port = free_port()
    with (
        Named(tmp_path / "primary", also_notify=[("127.0.0.1", port)]) as primary,
        NamedSecondary(
            tmp_path / "secondary", primary=primary.address, key=primary.key, port=port
        ) as secondary,
    ):
        yield primary, secondary


def test_secondary_follows_by_notify_and_lags_while_held_or_paused(
    primary_and_secondary: tuple[Named, NamedSecondary],
) -> None:
    primary, secondary = primary_and_secondary
    assert secondary.serial() == primary.serial() == 1  # the first transfer, before start returned

    lags = []
    for i in range(1, 6):
        assert _update(primary, "db.xy", f"192.0.2.{i}") == "NOERROR"
        serial = primary.serial()
        assert serial == 1 + i
        lags.append(secondary.wait_serial(serial, timeout=10))
        assert secondary.query("db.xy", "A").texts == (f"192.0.2.{i}",)
    assert "transfer of 'clamav.net/IN'" in primary.log_text()
    print(f"secondary lag after NOTIFY: {', '.join(f'{s * 1000:.0f} ms' for s in lags)}")

    # held: it answers, with the old data, however many NOTIFYs come
    secondary.hold()
    assert _update(primary, "db.xy", "192.0.2.50") == "NOERROR"
    assert _update(primary, "db.xy", "192.0.2.51") == "NOERROR"
    for _ in range(10):
        assert secondary.serial() == 6
        assert secondary.query("db.xy", "A").texts == ("192.0.2.5",)
        time.sleep(0.05)
    assert primary.serial() == 8
    secondary.release()
    secondary.wait_serial(8)
    assert secondary.query("db.xy", "A").texts == ("192.0.2.51",)

    # paused (SIGSTOP): it answers nothing until resumed, then catches up from the queued NOTIFY
    secondary.pause()
    assert _update(primary, "db.xy", "192.0.2.60") == "NOERROR"
    with pytest.raises(dns.exception.Timeout):
        secondary.query("db.xy", "A", timeout=0.5)
    secondary.resume()
    secondary.wait_serial(9)
    assert secondary.query("db.xy", "A").texts == ("192.0.2.60",)


@pytest.mark.slow
def test_cache_holds_the_old_answer_for_its_ttl_then_asks_again(tmp_path: Path) -> None:
    ttl = 3
    with (
        Named(tmp_path / "primary") as primary,
        NamedCache(tmp_path / "cache", forwarders=[primary.address]) as cache,
    ):
        assert _update(primary, "db.xy", "192.0.2.1", ttl=ttl) == "NOERROR"
        filled = time.monotonic()
        first = cache.query("db.xy", "A", tcp=False)
        assert first.texts == ("192.0.2.1",) and first.ttl == ttl
        assert _update(primary, "db.xy", "192.0.2.2", ttl=ttl) == "NOERROR"
        assert primary.query("db.xy", "A").texts == ("192.0.2.2",)

        seen_old = []
        while True:
            asked = time.monotonic()
            answer = cache.query("db.xy", "A", tcp=False)
            if answer.texts != ("192.0.2.1",):
                break
            assert answer.ttl is not None and 0 <= answer.ttl <= ttl
            seen_old.append((asked - filled, answer.ttl))
            assert asked - filled < ttl + 5, "the cache kept the old answer past its TTL"
            time.sleep(0.1)
        # the new answer comes straight from the primary, its TTL whole again
        assert answer.texts == ("192.0.2.2",) and answer.ttl == ttl
        # BIND counts the TTL in whole seconds: the old answer may go up to 1 s early, never more
        assert asked - filled >= ttl - 1
        assert seen_old and seen_old[0][1] >= 1
        print(f"old answer seen (s after the fill, TTL left): {seen_old}")
        # rndc flush forgets it at once
        assert _update(primary, "db.xy", "192.0.2.3", ttl=ttl) == "NOERROR"
        assert cache.query("db.xy", "A", tcp=False).texts == ("192.0.2.2",)
        cache.flush()
        assert cache.query("db.xy", "A", tcp=False).texts == ("192.0.2.3",)


def test_freeze_refuses_updates_and_thaw_restores(tmp_path: Path) -> None:
    with Named(tmp_path / "primary") as primary:
        assert _update(primary, "db.xy", "192.0.2.1") == "NOERROR"
        primary.freeze()
        assert _update(primary, "db.xy", "192.0.2.2") == "REFUSED"
        assert "frozen" in primary.log_text()
        assert primary.query("db.xy", "A").texts == ("192.0.2.1",)
        primary.thaw()
        assert _update(primary, "db.xy", "192.0.2.3") == "NOERROR"
        assert primary.query("db.xy", "A").texts == ("192.0.2.3",)


def test_freeze_of_one_views_zone_leaves_the_other_view_writable(tmp_path: Path) -> None:
    work = tmp_path / "primary"
    work.mkdir()
    a, b = TsigKey.generate("view-a"), TsigKey.generate("view-b")
    soa = "$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 127.0.0.1\n"
    views = []
    for view, key in (("a", a), ("b", b)):
        (work / f"{view}.zone").write_text(soa)
        views.append(f"""{key.statement()}
view "{view}" {{
    match-clients {{ key "{key.name}"; }};
    zone "clamav.net" {{
        type primary;
        file "{work / f"{view}.zone"}";
        allow-update {{ key "{key.name}"; }};
    }};
}};""")
    (work / "views.conf").write_text("\n".join(views))
    with Named(work, views_conf=work / "views.conf") as primary:
        primary.freeze(view="a")
        assert _update(primary, "db.local", "192.0.2.1", key=a) == "REFUSED"
        assert _update(primary, "db.local", "192.0.2.2", key=b) == "NOERROR"
        assert primary.query("db.local", "A", key=b).texts == ("192.0.2.2",)
        assert primary.query("db.local", "A", key=a).texts == ()
        assert primary.serial(key=a) == 1 and primary.serial(key=b) == 2
        primary.thaw(view="a")
        assert _update(primary, "db.local", "192.0.2.1", key=a) == "NOERROR"
        assert primary.query("db.local", "A", key=a).texts == ("192.0.2.1",)
