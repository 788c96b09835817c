"""syncd publish then the release gate, against real sshd mirrors and a real BIND 9."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from devtools.harness.cvd import DEFAULT_VERSIONS, write_release
from devtools.harness.documents import write_secret
from devtools.harness.named import Named
from devtools.harness.nginx import Nginx
from tests.publish.fakes import MirrorFactory
from tests.publish.fixtures import FAST_POLICY, Syncd


def test_publish_opens_the_gate_only_when_mirrors_serve_the_release(
    tmp_path: Path, fake_mirror: MirrorFactory, nginx_factory: Callable[..., Nginx], syncd: Syncd
) -> None:
    source = tmp_path / "source"
    write_release(source, **DEFAULT_VERSIONS)
    fresh_root, stale_root = tmp_path / "fresh", tmp_path / "stale"
    write_release(fresh_root, **DEFAULT_VERSIONS)
    write_release(stale_root, DEFAULT_VERSIONS["daily"] - 1)
    fresh_web, stale_web = nginx_factory(fresh_root), nginx_factory(stale_root)
    good = fake_mirror("good.test", "ok")
    stale = fake_mirror("stale.test", "ok")  # reports ok, serves the old daily over HTTP
    with Named(tmp_path / "named") as named:
        secret = tmp_path / "tsig.secret"
        write_secret(secret, named.secret)
        dns = (
            f'\n[dns]\nserver = "{named.host}"\nport = {named.port}\n'
            f'key_name = "{named.key_name}"\nkey_secret_file = "{secret}"\n'
            "gate_share = 0.9\n"
        )
        syncd.write(
            good.inventory_block(http=fresh_web.base_url, country="PL")
            + stale.inventory_block(http=stale_web.base_url, country="DE"),
            policy=FAST_POLICY + dns,
        )
        code, doc, err = syncd.publish("--source-tree", str(source))
        assert code == 1, err
        gate = doc["dns"]["gate"]
        assert not gate["open"] and gate["held_back_by"] == ["stale.test"]
        assert "held back by: stale.test" not in err  # --json: the gate is in the document
        assert named.dig("current.cvd", "TXT") == []  # nothing announced
        # DE has no mirror serving the release: its pool falls back to the good one
        assert named.dig("db.de", "A") == ["127.0.0.1"]
        assert any(
            c["name"] == "db.de" and "no eligible mirror in DE" in c["reason"]
            for c in doc["dns"]["changes"]
        )

        # the stale mirror catches up: the next publish opens the gate and announces it
        write_release(stale_root, **DEFAULT_VERSIONS)
        code, doc, err = syncd.publish("--source-tree", str(source))
        assert code == 0, err
        assert doc["dns"]["gate"]["open"] and doc["dns"]["sent"]
        [txt] = named.dig("current.cvd", "TXT")
        assert f":{DEFAULT_VERSIONS['daily']}:" in txt

        # --no-dns leaves DNS alone; a dry run only reports
        code, doc, _ = syncd.publish("--source-tree", str(source), "--no-dns")
        assert code == 0 and "dns" not in doc
        code, doc, _ = syncd.publish("--source-tree", str(source), "--dry-run")
        assert code == 0 and doc["dns"]["dry_run"] and doc["dns"]["changes"] == []
