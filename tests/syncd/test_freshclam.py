"""The acceptance oracle: ClamAV's own freshclam against a mirror that pushsync just published.

syncd publish pushes a whole release tree (CVDs, the last cdiffs, .sign files, timestamp) to a
real sshd mirror forcing the real clam-clientsync, served by nginx; the gate announces the
release in the harness BIND, which freshclam reads through its resolver. Every file freshclam
then asks for must be answered 200 with the published bytes. Our synthetic files cannot carry
ClamAV's digital signature, so freshclam refusing them at signature verification is the
expected end of its run, and this test says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness.account import MirrorAccount
from tests.harness.cvd import write_release_tree
from tests.harness.freshclam import Freshclam, dns_on_port_53, freshclam_requests, usable, write_cld
from tests.harness.named import Named
from tests.harness.nginx import Nginx
from tests.harness.rsyncd import RsyncDaemon
from tests.harness.sshd import Sshd
from tests.harness.sshkeys import KeyPair
from tests.syncd.conftest import FAST_POLICY, Syncd, by_name
from tests.syncd.realclient import MirrorMaker, client_pyz, real_fleet

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
    write_release_tree(tree, DAILY, cdiffs=3, signs=True)
    return tree


@pytest.fixture
def real_mirror(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sshd_factory: Callable[..., Sshd],
    nginx_factory: Callable[..., Nginx],
    account: MirrorAccount,
    keypair: KeyPair,
    rsync_pair: tuple[RsyncDaemon, RsyncDaemon],
) -> Iterator[MirrorMaker]:
    yield from real_fleet(
        tmp_path,
        sshd_factory,
        nginx_factory,
        account,
        keypair.public_line,
        client_pyz(request),
        rsync_pair,
    )


@pytest.fixture
def dns(tmp_path: Path) -> Iterator[Named]:
    with dns_on_port_53(tmp_path / "named") as named:
        yield named


def test_freshclam_finds_the_release_in_dns_and_gets_every_file_it_asks_for(
    tmp_path: Path, real_mirror: MirrorMaker, syncd: Syncd, source_tree: Path, dns: Named
) -> None:
    mirror = real_mirror("pl1.test")
    secret = tmp_path / "tsig.secret"
    secret.write_text(dns.secret + "\n")
    syncd.write(
        mirror.inventory_block(),
        policy=FAST_POLICY
        + f'[dns]\nserver = "{dns.host}"\nport = {dns.port}\nkey_name = "{dns.key_name}"\n'
        f'key_secret_file = "{secret}"\nclamav_version = "1.4.6"\ngate_share = 1.0\n',
    )
    code, doc, err = syncd.publish("--source-tree", str(source_tree))
    assert code == 0 and by_name(doc)["pl1.test"]["outcome"] == "ok", err
    assert doc["dns"]["gate"]["reached"], doc["dns"]
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
