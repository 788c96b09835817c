"""The acceptance oracle: ClamAV's own freshclam against a mirror that pushsync just published.

syncd publish pushes a whole release tree (CVDs, the last cdiffs, .sign files, timestamp) to a
real sshd mirror forcing the real clam-clientsync, served by nginx; the gate announces the
release in the harness BIND, which freshclam reads through its resolver. Every file freshclam
then asks for must be answered 200 with the published bytes. Our synthetic files cannot carry
ClamAV's digital signature, so freshclam refusing them at signature verification is the
expected end of its run, and this test says so.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from devtools.harness.cvd import release_time, write_release_tree
from devtools.harness.documents import write_secret
from devtools.harness.freshclam import (
    Freshclam,
    dns_on_port_53,
    freshclam_requests,
    usable,
    write_cld,
)
from devtools.harness.named import Named
from devtools.harness.nginx import Nginx
from tests.publish.fixtures import FAST_POLICY, Syncd, by_name
from tests.publish.realclient import MirrorMaker

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(usable() is not None, reason=str(usable())),
]
DAILY = 28034


@pytest.fixture
def source_tree(tmp_path: Path) -> Path:
    """The whole release tree as rsync1/rsync2 serve it (overrides the suite's CVDs-only one)."""
    tree = tmp_path / "source"
    tree.mkdir()
    # released two hours ago: past the monitor's lagging grace set below
    write_release_tree(
        tree, DAILY, cdiffs=3, signs=True, build_time=release_time() - timedelta(hours=2)
    )
    return tree


@pytest.fixture
def dns(tmp_path: Path) -> Iterator[Named]:
    with dns_on_port_53(tmp_path / "named") as named:
        yield named


def test_freshclam_finds_the_release_in_dns_and_gets_every_file_it_asks_for(
    tmp_path: Path, real_mirror: MirrorMaker, syncd: Syncd, source_tree: Path, dns: Named
) -> None:
    mirror = real_mirror("pl1.test")
    secret = tmp_path / "tsig.secret"
    write_secret(secret, dns.secret + "\n")
    syncd.write(
        mirror.inventory_block(),
        policy=FAST_POLICY
        + f'[dns]\nserver = "{dns.host}"\nport = {dns.port}\nkey_name = "{dns.key_name}"\n'
        f'key_secret_file = "{secret}"\nclamav_version = "1.4.6"\ngate_share = 1.0\n',
    )
    code, doc, err = syncd.publish("--source-tree", str(source_tree))
    assert code == 0 and by_name(doc)["pl1.test"]["outcome"] == "ok", err
    assert doc["dns"]["gate"]["open"], doc["dns"]
    assert dns.dig("db.pl", "A") == ["127.0.0.1"]
    for name in sorted(p.name for p in source_tree.iterdir()):  # the whole tree is served
        assert (mirror.docroot / name).read_bytes() == (source_tree / name).read_bytes(), name

    # a user two releases behind, on a patched (cld) daily: freshclam wants the cdiffs
    fc = Freshclam(tmp_path / "freshclam", dns)
    write_cld(fc.database, "daily", DAILY - 2)
    for db in ("main", "bytecode"):  # the user's main and bytecode are current
        (fc.database / f"{db}.cvd").write_bytes((source_tree / f"{db}.cvd").read_bytes())
    port = mirror.web.base_url.rsplit(":", 1)[1]
    run = fc.run(f"http://db.pl.clamav.net:{port}")
    out = run.stdout + run.stderr

    # it read the release from our TXT record...
    assert f"daily.cvd version from DNS: {DAILY}" in out, out
    # ...asked our mirror for the next cdiff, then (the cdiff's signature failing) daily.cvd
    asked = freshclam_requests(mirror.web.access_log)
    paths = [r.path for r in asked]
    assert paths[:1] == [f"/daily-{DAILY - 1}.cdiff"], (paths, out)
    assert "/daily.cvd" in paths, (paths, out)
    for r in asked:
        served = mirror.docroot / r.path.lstrip("/")
        assert r.method == "GET" and r.status == 200, (r, out)
        assert r.bytes_sent == served.stat().st_size, r  # whole, and the published bytes
        assert served.read_bytes() == (source_tree / served.name).read_bytes()
    assert all(r.agent.startswith("ClamAV/1.") for r in asked)
    # the expected end: our synthetic database is not signed by ClamAV
    assert run.returncode != 0
    assert "Can't verify database integrity" in out, out


def _served_copy(
    tmp_path: Path,
    nginx_factory: Callable[..., Nginx],
    mirror_root: Path,
    name: str,
    damage: Callable[[Path], None],
) -> Nginx:
    """A web server for a mirror that serves a damaged copy of its tree (what a broken vhost,
    a half-finished copy or a full disk gives the users, whatever the client reported)."""
    root = tmp_path / f"served-{name}"
    shutil.copytree(mirror_root, root)
    damage(root)
    return nginx_factory(root)


def _drop_cdiff(root: Path) -> None:
    (root / f"daily-{DAILY}.cdiff").unlink()


def _truncate_cdiff(root: Path) -> None:
    path = root / f"daily-{DAILY}.cdiff"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _alter_sign(root: Path) -> None:
    path = root / f"daily-{DAILY}.cvd.sign"
    path.write_bytes(path.read_bytes().replace(b"#", b"!", 1))


def test_publish_proof_gate_and_monitor_catch_a_mirror_without_the_whole_current_cdiff(
    tmp_path: Path,
    real_mirror: MirrorMaker,
    nginx_factory: Callable[..., Nginx],
    syncd: Syncd,
    source_tree: Path,
    dns: Named,
) -> None:
    good = real_mirror("good.test")
    broken = {
        "missing.test": (_drop_cdiff, f"/daily-{DAILY}.cdiff answered HTTP 404"),
        "truncated.test": (_truncate_cdiff, f"/daily-{DAILY}.cdiff is "),
        "badsign.test": (_alter_sign, f"/daily-{DAILY}.cvd.sign differs from the release's"),
    }
    made = {name: real_mirror(name) for name in broken}
    secret = tmp_path / "tsig.secret"
    write_secret(secret, dns.secret + "\n")
    dns_section = (
        f'[dns]\nserver = "{dns.host}"\nport = {dns.port}\nkey_name = "{dns.key_name}"\n'
        f'key_secret_file = "{secret}"\nclamav_version = "1.4.6"\ngate_share = 0.5\n'
    )
    # first every mirror syncs (the client's own report says ok), then their web servers
    # serve damaged copies of what they synced
    syncd.write(
        good.inventory_block() + "".join(m.inventory_block() for m in made.values()),
        policy=FAST_POLICY + dns_section,
    )
    code, doc, err = syncd.publish("--source-tree", str(source_tree), "--no-dns")
    assert code == 0, err
    webs = {
        name: _served_copy(tmp_path, nginx_factory, made[name].docroot, name, damage)
        for name, (damage, _) in broken.items()
    }
    inventory = good.inventory_block() + "".join(
        made[n].inventory_block(http=webs[n].base_url) for n in broken
    )
    syncd.write(inventory, policy=FAST_POLICY + dns_section)
    code, doc, err = syncd.publish("--source-tree", str(source_tree))
    assert code == 1, err
    got = by_name(doc)
    assert got["good.test"]["outcome"] == "ok", err
    for name, (_, problem) in broken.items():
        assert got[name]["outcome"] == "failed", (name, got[name])
        assert problem in got[name]["error"], (name, got[name]["error"])
        assert got[name]["report"]["status"] == "ok"  # the client's word was not enough
    gate = doc["dns"]["gate"]
    assert sorted(gate["held_back_by"]) == sorted(broken) and not gate["open"], gate

    # the monitor, past the lagging grace (the release was built two hours ago, grace 1 h)
    syncd.write(inventory, policy=FAST_POLICY + "[monitor]\nlagging_grace_h = 1\n")
    proc = syncd.run(
        "monitor",
        "--once",
        "--json",
        "--no-mail",
        "--config",
        str(syncd.config),
        "--source-tree",
        str(source_tree),
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    states = {m["name"]: (m["state"], m["reason"]) for m in summary["mirrors"]}
    assert states["good.test"][0] == "fresh", states
    for name, (_, problem) in broken.items():
        state, reason = states[name]
        assert state == "lagging" and problem in reason, (name, state, reason)
