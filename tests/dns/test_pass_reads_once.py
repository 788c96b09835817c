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
from syncd.monitor.notices import NoticeStore
from syncd.monitor.store import MonitorStore
from syncd.publish.store import PublishStore
from tests.dns.test_maintenance_bind import MIRRORS, Lab, lab

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
    lab.published()
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
