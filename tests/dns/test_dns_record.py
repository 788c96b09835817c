"""What the DNS part of the record makes the TXT wait for, and one updater at a time: the
record's own rules on a real SQLite file (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.dns.plan import Change
from syncd.dns.store import DnsBusy, DnsStore, dns_lock
from syncd.sqlite import open_db

T = 2_000_000_000.0  # an arbitrary instant: nothing here reads a clock
H = 3600.0


@pytest.fixture
def store(tmp_path: Path) -> DnsStore:
    return DnsStore(open_db(tmp_path / "state.sqlite"))


def _removal(store: DnsStore, at: float, held_ttl: int, outcome: str = "sent") -> list[int]:
    change = Change("db.pl", "A", (), ("127.0.1.2",), "r", held_ttl=held_ttl, ttl=60)
    ids = store.record(at, [change], "sending")
    store.set_outcome(ids, outcome)
    return ids


def test_a_long_ttl_is_waited_out_however_long_ago_the_removal_was_sent(
    store: DnsStore,
) -> None:
    """A removal sent 3 h ago with a held TTL of a day still holds the TXT (on the code before,
    a removal sent more than 2 h ago was forgotten)."""
    _removal(store, T - 3 * H, 86_400)
    store.settle(T - 3 * H)
    [r] = store.removals(T, default_ttl=300)
    assert r.settled_at + r.ttl == T - 3 * H + 86_400


def test_a_removal_that_settled_late_counts_from_when_it_settled(store: DnsStore) -> None:
    _removal(store, T - 3 * H, 60)  # sent 3 h ago, a secondary lagging since
    store.settle(T - 10)  # every server serves it only now
    [r] = store.removals(T, default_ttl=300)
    assert r.settled_at == T - 10


def test_a_removal_recorded_failed_or_cut_off_counts_too(store: DnsStore) -> None:
    """The server may have applied an update whose answer was lost (recorded failed) or whose
    sender died (still 'sending'): its records may be in caches all the same (on the code
    before, only 'sent' counted)."""
    _removal(store, T - 20, 60, outcome="failed: no answer")
    _removal(store, T - 20, 60, outcome="sending")
    store.settle(T - 10)
    assert len(store.removals(T, default_ttl=300)) == 2


def test_a_lowered_ttl_is_waited_out_like_a_removal(store: DnsStore) -> None:
    """Adding to a set the server held at TTL 3600, with TTL 60, leaves the old set in caches
    for an hour: it holds the TXT as a removal would (on the code before, adds never did)."""
    grow = Change("db.de", "A", ("127.0.2.2",), (), "r", held_ttl=3600, ttl=60)
    store.set_outcome(store.record(T - 20, [grow], "sending"), "sent")
    same = Change("db.nl", "A", ("127.0.3.2",), (), "r", held_ttl=60, ttl=60)
    store.set_outcome(store.record(T - 20, [same], "sending"), "sent")
    store.settle(T - 10)
    [r] = store.removals(T, default_ttl=300)
    assert r.ttl == 3600


def test_what_has_passed_its_ttl_holds_nothing(store: DnsStore) -> None:
    _removal(store, T - 200, 60)
    store.settle(T - 100)
    assert store.removals(T, default_ttl=300) == []


def test_one_dns_updater_at_a_time(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    waits: list[float] = []
    busy = pytest.raises(DnsBusy, match="another syncd has been updating DNS")
    with dns_lock(state), busy, dns_lock(state, wait_s=2.0, sleep=waits.append):
        pass
    assert sum(waits) == pytest.approx(2.0)
    with dns_lock(state):  # released: free again
        pass
