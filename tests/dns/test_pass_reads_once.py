"""One monitor pass reads its record once: the freshness records once, each mirror's checks
once, the publish states once, the maintenance notices once, and judges the gate's evidence
once; the DNS rotation (through the real update, against a real BIND primary) is handed that
judgement instead of opening the record again.

Proven to fail: with ``syncd/monitor/run.py``, ``syncd/dns/update.py`` and
``syncd/dns/evidence.py`` as they were before (the rotation gathered its own evidence), the
pass read the records 3 times, each mirror's checks twice, the publish states twice, the
notices twice, and judged the evidence twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

import syncd.dns.evidence
import syncd.dns.gate
import syncd.monitor.run
from devtools.harness.record import record_publish
from syncd.dns.update import Clock, update
from syncd.files import load_config, read_inventory, read_source_tree
from syncd.monitor.notices import NoticeStore
from syncd.monitor.store import MonitorStore
from syncd.publish.store import PublishStore
from tests.dns.test_maintenance_bind import DAILY, MIRRORS, Lab, lab

pytestmark = pytest.mark.slow
__all__ = ["lab"]  # the fixture: three nginx mirrors in db.pl, a BIND primary, an SMTP sink


class Reads:
    """What one pass reads of the record, counted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts: Counter[str] = Counter()
        self.checks: Counter[str] = Counter()  # mirror -> reads of its checks

        def counted(name: str, method: Callable[..., object]) -> Callable[..., object]:
            def wrapper(*args: object, **kwargs: object) -> object:
                self.counts[name] += 1
                return method(*args, **kwargs)

            return wrapper

        def per_mirror(method: Callable[..., object]) -> Callable[..., object]:
            def wrapper(store: MonitorStore, mirror: str, *args: object) -> object:
                self.checks[mirror] += 1
                return method(store, mirror, *args)

            return wrapper

        patch = monkeypatch.setattr
        patch(MonitorStore, "records", counted("records", MonitorStore.records))
        patch(MonitorStore, "checks", per_mirror(MonitorStore.checks))
        patch(MonitorStore, "history", per_mirror(MonitorStore.history))
        patch(PublishStore, "mirror_states", counted("published", PublishStore.mirror_states))
        patch(NoticeStore, "sightings", counted("notices", NoticeStore.sightings))
        judge = counted("judged", syncd.dns.gate.judge_mirrors)
        patch(syncd.dns.gate, "judge_mirrors", judge)
        for module in (syncd.monitor.run, syncd.dns.evidence):  # imported there before
            patch(module, "judge_mirrors", judge, raising=False)

    def clear(self) -> None:
        self.counts.clear()
        self.checks.clear()


def test_one_pass_reads_the_record_once_and_the_rotation_uses_it(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    t0 = lab.now[0]
    versions = {"daily": DAILY, "main": 62, "bytecode": 335}
    record_publish(lab.tmp / "state.sqlite", dict.fromkeys(MIRRORS, True), versions, at=t0)
    cfg, _ = load_config(lab.config)
    assert cfg.dns is not None
    first = update(
        cfg,
        cfg.dns,
        inventory=read_inventory(lab.tmp / "inventory.toml"),
        state=lab.tmp / "state.sqlite",
        source=read_source_tree(lab.tmp / "source"),
        dry_run=False,
        now=t0,
        clock=Clock(now=lambda: lab.now[0], sleep=lambda s: None),
    )
    assert first.error is None, first.to_json()
    reads = Reads(monkeypatch)
    for n in range(2):  # the first pass on an empty monitor record, the second on one pass's
        reads.clear()
        lab.now[0] = t0 + n * 600
        summary = lab.monitor()
        assert summary.dns is not None and summary.dns.error is None, summary.to_json()
        assert summary.dns.gate is not None and summary.dns.gate.reached, summary.to_json()
        assert lab.pool() == sorted(MIRRORS.values())
        assert (dict(reads.counts), dict(reads.checks)) == (
            {"records": 1, "published": 1, "notices": 1, "judged": 1},
            dict.fromkeys(MIRRORS, 1),
        )
