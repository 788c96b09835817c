"""End to end with [[sources]]: real sshd mirrors that authorize both pusher keys (one forced
command per source, as ``syncd keys render`` writes them), the real clam-clientsync, and both
real rsync daemons."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devtools.harness.account import MirrorAccount
from devtools.harness.client import SOURCE_NAMES, client_command, client_config, mirror_home
from devtools.harness.cvd import DEFAULT_VERSIONS, read_header
from devtools.harness.faultproxy import closed_port
from devtools.harness.nginx import Nginx
from devtools.harness.rsyncd import RsyncDaemon
from devtools.harness.sshd import Sshd, forced_command_line
from devtools.harness.sshkeys import KeyPair, generate_keypair
from tests.publish.fixtures import FAST_POLICY, Syncd, by_name
from tests.publish.realclient import RealMirror, client_pyz, kill_clients

pytestmark = pytest.mark.slow

R1, R2 = SOURCE_NAMES
Maker = Callable[..., RealMirror]


@pytest.fixture
def pusher_keys(tmp_path: Path) -> tuple[KeyPair, KeyPair]:
    return (
        generate_keypair(tmp_path / "keys" / "rsync1_ed25519", "pushsync-rsync1"),
        generate_keypair(tmp_path / "keys" / "rsync2_ed25519", "pushsync-rsync2"),
    )


@pytest.fixture
def two_key_mirror(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sshd_factory: Callable[..., Sshd],
    nginx_factory: Callable[..., Nginx],
    account: MirrorAccount,
    pusher_keys: tuple[KeyPair, KeyPair],
    rsync_pair: tuple[RsyncDaemon, RsyncDaemon],
) -> Iterator[Maker]:
    """``two_key_mirror(name, urls=...)``: a real mirror whose sshd forces the client for
    rsync1 with the first pusher key and for rsync2 with the second."""
    pyz = client_pyz(request)

    def make(
        name: str, *, urls: tuple[str, str] | None = None, extra: dict[str, str] | None = None
    ) -> RealMirror:
        rsync = rsync_pair[0]
        laid = mirror_home(
            tmp_path / "mirrors" / name,
            account,
            client_command(pyz),
            R1,
            lambda docroot, state: client_config(
                docroot,
                state,
                urls or (rsync_pair[0].url, rsync_pair[1].url),
                rsync.user,
                rsync.password,
                extra,
            ),
        )
        base = laid.forced_command.rsplit(" ", 1)[0]
        lines = [
            forced_command_line(key.public_line, f"{base} {source}")
            for key, source in zip(pusher_keys, SOURCE_NAMES, strict=True)
        ]
        server = sshd_factory(authorized_keys=lines)
        web = nginx_factory(laid.docroot)
        return RealMirror(name, laid.home, laid.docroot, laid.conf, server, web)

    yield make
    kill_clients(tmp_path / "mirrors")


def sources_policy(keys: tuple[KeyPair, KeyPair], *, max1: int = 4) -> str:
    return (
        FAST_POLICY.replace("command_timeout = 4", "command_timeout = 20").replace(
            "run_timeout = 20", "run_timeout = 60"
        )
        + f'[[sources]]\nname = "{R1}"\nkey = "{keys[0].private}"\nweight = 1\n'
        f"max_transfers = {max1}\n"
        f'[[sources]]\nname = "{R2}"\nkey = "{keys[1].private}"\nweight = 1\n'
        "max_transfers = 4\n"
    )


def _show(syncd: Syncd, run_id: str) -> tuple[dict[str, dict[str, object]], str]:
    doc = syncd.run("runs", "show", run_id, "--json", "--config", str(syncd.config))
    text = syncd.run("runs", "show", run_id, "--config", str(syncd.config))
    assert doc.returncode == 0 and text.returncode == 0, doc.stderr + text.stderr
    return by_name(json.loads(doc.stdout)), text.stdout


def test_weights_one_to_one_split_the_mirrors_across_both_sources(
    two_key_mirror: Maker,
    syncd: Syncd,
    source_tree: Path,
    pusher_keys: tuple[KeyPair, KeyPair],
) -> None:
    mirrors = [two_key_mirror(f"m{i}.test") for i in range(4)]
    syncd.write("".join(m.inventory_block() for m in mirrors), policy=sources_policy(pusher_keys))
    code, doc, err = syncd.publish("--source-tree", str(source_tree), timeout=90)
    assert code == 0, err
    got = by_name(doc)
    assert {n: m["outcome"] for n, m in got.items()} == {m.name: "ok" for m in mirrors}, err
    assert Counter(m["report"]["source_used"] for m in got.values()) == {R1: 2, R2: 2}
    for m in mirrors:
        assert int(read_header(m.docroot / "daily.cvd")["version"]) == DEFAULT_VERSIONS["daily"]
    shown, text = _show(syncd, doc["run_id"])
    for name, m in got.items():
        assert shown[name]["source"] == m["report"]["source_used"]
        assert str(shown[name]["source_reason"]).startswith("weight share: 50% of mirrors to")
    assert f"source {R1}: weight share: 50% of mirrors to {R1} (weights {R1}=1, {R2}=1)" in text


def test_rsync1_down_moves_its_mirrors_to_rsync2(
    two_key_mirror: Maker,
    syncd: Syncd,
    source_tree: Path,
    pusher_keys: tuple[KeyPair, KeyPair],
    rsync_pair: tuple[RsyncDaemon, RsyncDaemon],
) -> None:
    """rsync1 is down (nothing listens where the mirrors reach it). The first mirror pushed to
    it falls back by itself; the scheduler learns from its report and pushes the rest of
    rsync1's share with the rsync2 key: every mirror ends ok, from rsync2."""
    down = f"rsync://127.0.0.1:{closed_port()}"
    mirrors = [two_key_mirror(f"m{i}.test", urls=(down, rsync_pair[1].url)) for i in range(4)]
    syncd.write(
        "".join(m.inventory_block() for m in mirrors),
        policy=sources_policy(pusher_keys, max1=1),
    )
    code, doc, err = syncd.publish("--source-tree", str(source_tree), timeout=90)
    assert code == 0, err
    got = by_name(doc)
    assert {n: m["outcome"] for n, m in got.items()} == {m.name: "ok" for m in mirrors}, err
    assert {m["report"]["source_used"] for m in got.values()} == {R2}
    shown, text = _show(syncd, doc["run_id"])
    pushed = Counter(str(m["source"]) for m in shown.values())
    assert pushed == {R1: 1, R2: 3}
    (first,) = [n for n, m in shown.items() if m["source"] == R1]
    moved = [n for n, m in shown.items() if str(m["source_reason"]).startswith("failover")]
    assert len(moved) == 1
    assert f"failover: {R1} failed for {first} in this run, so {R2}" in text
    for m in mirrors:
        assert int(read_header(m.docroot / "daily.cvd")["version"]) == DEFAULT_VERSIONS["daily"]


def test_a_second_wave_pulls_from_a_hub_once_it_serves_the_release(
    tmp_path: Path,
    two_key_mirror: Maker,
    syncd: Syncd,
    source_tree: Path,
    pusher_keys: tuple[KeyPair, KeyPair],
) -> None:
    """One mirror is a hub: after its own push, its rsync daemon (anonymous, read-only, over
    the tree it serves) is where the three others pull from, each pushed with a source's key
    and a request naming the hub and pinning the release's CVDs."""
    hub = two_key_mirror("hub0.test")
    with RsyncDaemon(
        tmp_path / "hubd", hub.docroot, name="hubd", module="clamav", anonymous=True
    ) as d:
        hubs = {"HUBS": f'"hub0.test={d.url}/clamav"'}
        wave = [two_key_mirror(f"m{i}.test", extra=hubs) for i in range(3)]
        syncd.write(
            hub.inventory_block()
            + "hub = { max_transfers = 2, weight = 6 }\n"
            + "".join(m.inventory_block(hubs=["hub0.test"]) for m in wave),
            policy=sources_policy(pusher_keys),
        )
        code, doc, err = syncd.publish("--source-tree", str(source_tree), timeout=90)
        served = d.log_text()
    assert code == 0, err
    got = by_name(doc)
    assert {n: m["outcome"] for n, m in got.items()} == {m.name: "ok" for m in (hub, *wave)}, err
    assert got["hub0.test"]["report"]["source_used"] in (R1, R2)
    for m in wave:
        assert got[m.name]["report"]["source_used"] == "hub0.test"
        assert (m.docroot / "daily.cvd").read_bytes() == (source_tree / "daily.cvd").read_bytes()
    assert served.count("clamav") >= 3  # the hub's daemon served the wave
    shown, text = _show(syncd, doc["run_id"])
    for m in wave:
        assert shown[m.name]["source"] == "hub0.test"
        assert str(shown[m.name]["source_reason"]).startswith("second wave: via hub hub0.test")
    assert "source hub0.test: second wave: via hub hub0.test once it serves the release" in text
