"""Pushes through a hub: another mirror, running an rsync daemon over the tree it serves, that a
push may name (``source=``) when this mirror's admin listed it in ``HUBS``. Real daemons: the
hub is pulled first, gets none of the project's credentials, and hands over only the CVDs the
push pinned; the mirror falls back to its sources when the hub fails or cheats."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.harness.cvd import write_cvd
from devtools.harness.rsyncd import RsyncDaemon
from pushwire.cvd import HEADER_SIZE, parse_header
from pushwire.request import render_request
from tests.client.conftest import R1, R2, Mirror, fresh_mtime, make_mirror


def pins_of(tree: Path) -> dict[str, str]:
    """The release's md5 pins, as syncd takes them from the source tree's CVD headers."""
    return {
        db: parse_header((tree / f"{db}.cvd").read_bytes()[:HEADER_SIZE]).md5
        for db in ("daily", "main", "bytecode")
    }


def hub_push(tree: Path, hub: str = "hub-a") -> str:
    return render_request("sync", "r-hub", {"daily": 28033}, 60, source=hub, pins=pins_of(tree))


@pytest.fixture
def hub(tmp_path: Path, rsync_pair: tuple[RsyncDaemon, RsyncDaemon]) -> Iterator[RsyncDaemon]:
    """A mirror that synced the release from rsync1 and serves its tree anonymously."""
    upstream = make_mirror(tmp_path / "hub", rsync_pair)
    assert upstream.run().report["status"] == "ok"
    with RsyncDaemon(
        tmp_path / "hubd", upstream.to, name="hub", module="clamav", anonymous=True
    ) as d:
        yield d


def with_hub(mirror: Mirror, daemon: RsyncDaemon, name: str = "hub-a") -> Mirror:
    mirror.write_config(HUBS=f"{name}={daemon.url}/{daemon.module}")
    return mirror


def test_a_push_through_a_hub_pulls_from_the_hub_first(
    mirror: Mirror, hub: RsyncDaemon, source_tree: Path
) -> None:
    rep = with_hub(mirror, hub).run(command=hub_push(source_tree)).report
    assert rep["status"] == "ok", rep["error"]
    assert rep["source_used"] == "hub-a" and [a["source"] for a in rep["attempts"]] == ["hub-a"]
    assert rep["databases"]["daily"]["version"] == 28033
    for name in ("daily.cvd", "main.cvd", "bytecode.cvd"):
        assert (mirror.to / name).read_bytes() == (source_tree / name).read_bytes()
    assert "clamav" in hub.log_text()  # the hub's daemon served it, no other


def test_a_hub_never_gets_the_sources_credentials(
    tmp_path: Path, mirror: Mirror, rsync_pair: tuple[RsyncDaemon, RsyncDaemon], source_tree: Path
) -> None:
    # a hub that would accept rsync1's user and password: the client must not offer them
    r1 = rsync_pair[0]
    with RsyncDaemon(
        tmp_path / "greedy", source_tree, name="greedy", user=r1.user, password=r1.password
    ) as greedy:
        rep = with_hub(mirror, greedy).run(command=hub_push(source_tree)).report
        assert r1.user not in greedy.log_text()
    assert rep["status"] == "ok" and rep["source_used"] == R1
    assert [a["source"] for a in rep["attempts"]] == ["hub-a", R1]
    assert rep["attempts"][0]["exit_code"] not in (0, 24)


def test_a_hub_handing_over_another_cvd_is_refused_and_the_source_used(
    tmp_path: Path, mirror: Mirror, rsync_pair: tuple[RsyncDaemon, RsyncDaemon], source_tree: Path
) -> None:
    # the hub's daily.cvd is valid and of the release's version, but not the release's bytes
    forged = tmp_path / "forged"
    for name in ("main.cvd", "bytecode.cvd"):
        forged.mkdir(exist_ok=True)
        (forged / name).write_bytes((source_tree / name).read_bytes())
    fresh_mtime(write_cvd(forged, "daily", 28033, signatures=1, payload_size=4096))
    with RsyncDaemon(
        tmp_path / "h", forged, name="cheat", module="clamav", anonymous=True
    ) as cheat:
        rep = with_hub(mirror, cheat).run(command=hub_push(source_tree)).report
    assert rep["status"] == "ok" and rep["source_used"] == R1
    first = rep["attempts"][0]
    assert first["source"] == "hub-a" and first["error"].startswith("pin_mismatch"), first
    assert (mirror.to / "daily.cvd").read_bytes() == (source_tree / "daily.cvd").read_bytes()


def test_a_hub_that_fails_falls_back_to_the_keys_source(
    mirror: Mirror, hub: RsyncDaemon, source_tree: Path
) -> None:
    with_hub(mirror, hub)
    hub.stop()
    rep = mirror.run(command=hub_push(source_tree)).report
    assert rep["status"] == "ok" and rep["source_used"] == R1
    assert [a["source"] for a in rep["attempts"]] == ["hub-a", R1]


def test_a_hub_not_in_hubs_is_refused_before_anything_runs(
    mirror: Mirror, hub: RsyncDaemon, source_tree: Path
) -> None:
    with_hub(mirror, hub)
    res = mirror.run(command=hub_push(source_tree, hub="rsync2.clamav.net"))
    rep = res.report
    assert res.rc == 64 and rep["status"] == "rejected"
    assert "not one of this mirror's HUBS" in rep["error"]["message"]
    assert "hub-a" in rep["error"]["message"]
    assert rep["attempts"] == [] and not (mirror.to / "daily.cvd").exists()


def test_a_push_naming_a_hub_without_pins_is_rejected(mirror: Mirror, hub: RsyncDaemon) -> None:
    res = with_hub(mirror, hub).run(command="sync source=hub-a")
    assert res.rc == 64 and res.report["status"] == "rejected"
    assert "pins" in res.report["error"]["message"]


def test_a_forged_hub_is_never_published_when_the_sources_are_down(
    tmp_path: Path, mirror: Mirror, source_tree: Path
) -> None:
    """The hub hands over a valid CVD that fails the push's pin, and neither project source
    answers: what the hub wrote into staging is judged with the pins all the same, so the
    forged daily.cvd is not published (on the code before, the publish judged staging without
    pins, as no source had been used, and served the hub's file)."""
    forged = tmp_path / "forged"
    forged.mkdir()
    for name in ("main.cvd", "bytecode.cvd"):
        (forged / name).write_bytes((source_tree / name).read_bytes())
    fresh_mtime(write_cvd(forged, "daily", 28033, signatures=1, payload_size=4096))
    before = (mirror.to / "daily.cvd").read_bytes() if (mirror.to / "daily.cvd").exists() else None
    mirror.write_config(SOURCES=f"{R1}=rsync://127.0.0.1:1 {R2}=rsync://127.0.0.1:2")
    with RsyncDaemon(
        tmp_path / "h", forged, name="cheat", module="clamav", anonymous=True
    ) as cheat:
        rep = with_hub(mirror, cheat).run(command=hub_push(source_tree)).report
    assert rep["status"] != "ok", rep
    served = (mirror.to / "daily.cvd").read_bytes() if (mirror.to / "daily.cvd").exists() else None
    assert served == before, "the hub's forged daily.cvd was published"
    assert served != (forged / "daily.cvd").read_bytes()
