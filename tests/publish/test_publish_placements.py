"""Both placements of asyncssh's loop give the same outcomes (the default thread is covered by
every other publish test)."""

from __future__ import annotations

from devtools.harness.cvd import DEFAULT_VERSIONS
from tests.publish.fakes import MirrorFactory
from tests.publish.fixtures import FAST_POLICY, Syncd, by_name

EXPECT = [f"--expect={db}={v}" for db, v in DEFAULT_VERSIONS.items()]


def test_trio_asyncio_placement(fake_mirror: MirrorFactory, syncd: Syncd) -> None:
    mirrors = [
        fake_mirror("ok.test", "ok"),
        fake_mirror("queued.test", "queued"),
        fake_mirror("hang.test", "hang"),
        fake_mirror("flaky.test", "flaky"),
    ]
    syncd.write(
        "".join(m.inventory_block() for m in mirrors),
        policy=FAST_POLICY + 'ssh_loop = "trio-asyncio"\n',
    )
    code, doc, err = syncd.publish(*EXPECT)
    assert code == 1, err
    assert {n: m["outcome"] for n, m in by_name(doc).items()} == {
        "ok.test": "ok",
        "queued.test": "ok",
        "hang.test": "timeout",
        "flaky.test": "ok",
    }
