"""The comparison of the record's propagation with the disks (benchmarks/propagation_check.py)
flags what it is there to catch: a mirror the record times before its file landed (beyond the
poller's lag) or long after, a mirror served on one side only, a quantile of the record that is
not its own mirrors' nearest rank; and says nothing of a faithful record. Pure: a small sample
of a served run (unix times), no servers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import propagation_check
from benchmarks.propagation_check import compare, nearest_rank
from syncd.release.propagation import quantiles

START = 1_000_000.0
# four mirrors: the disk's times and the record's, each 0.1-0.3 s later (the client's tail)
DISK = {"m1": START + 2.0, "m2": START + 3.0, "m3": START + 4.0, "m4": START + 9.0}
RECORD = {"m1": START + 2.1, "m2": START + 3.2, "m3": START + 4.3, "m4": START + 9.1}


def record_quantiles(record: dict[str, float | None]) -> dict[int, float | None]:
    """The quantiles as syncd computes them (syncd.release.propagation.quantiles)."""
    return dict(quantiles(record.values(), len(record), START).seconds)


def run(
    record: dict[str, float | None],
    disk: dict[str, float | None],
    qs: dict[int, float | None] | None = None,
) -> list[str]:
    qs = record_quantiles(record) if qs is None else qs
    out = compare(record, qs, disk, START, early_s=0.1, late_s=1.0)
    findings: list[str] = out["findings"]
    return findings


def test_a_faithful_record_has_no_finding() -> None:
    out = compare(
        dict(RECORD), record_quantiles(dict(RECORD)), dict(DISK), START, early_s=0.1, late_s=1.0
    )
    assert out["findings"] == []
    assert [r["q"] for r in out["quantiles"]] == [50, 90, 99, 100]
    assert out["quantiles"][0]["record_s"] == 3.2 and out["quantiles"][0]["disk_s"] == 3.0
    assert out["quantiles"][-1]["record_minus_disk_s"] == 0.1
    assert out["per_mirror_s"]["min"] == 0.1 and out["per_mirror_s"]["max"] == 0.3


def test_a_record_earlier_than_the_disk_is_flagged() -> None:
    planted = {**RECORD, "m3": START + 3.5}  # 0.5 s before its file landed
    findings = run(planted, dict(DISK))
    assert any(f.startswith("m3: the record is 0.500 s earlier") for f in findings), findings


def test_a_record_far_later_than_the_disk_is_flagged() -> None:
    planted = {**RECORD, "m2": START + 7.0}
    findings = run(planted, dict(DISK))
    assert any(f.startswith("m2: the record is 4.000 s later") for f in findings), findings


def test_a_mirror_served_on_one_side_only_is_flagged() -> None:
    assert any("missing in the record" in f for f in run({**RECORD, "m4": None}, dict(DISK)))
    assert any("never on disk" in f for f in run(dict(RECORD), {**DISK, "m4": None}))
    extra: dict[str, float | None] = {**RECORD, "m5": START + 1.0}
    assert any("m5: in the record, not among" in f for f in run(extra, dict(DISK)))


def test_a_quantile_off_by_one_rank_is_flagged() -> None:
    """A t50 taken one rank late (the 3rd of 4 mirrors instead of the 2nd) is caught against
    the record's own per-mirror times, though every mirror agrees with its disk."""
    qs = record_quantiles(dict(RECORD))
    qs[50] = 4.3
    findings = run(dict(RECORD), dict(DISK), qs)
    assert any(f.startswith("t50: the record says 4.3 s") for f in findings), findings


def test_a_wrong_clock_origin_is_flagged() -> None:
    """Quantiles from an origin 2 s late (say the run's end of startup, not its start)."""
    qs = {q: (None if v is None else v - 2.0) for q, v in record_quantiles(dict(RECORD)).items()}
    findings = run(dict(RECORD), dict(DISK), qs)
    assert any(f.startswith("t100: the record's 7.100 s is off") for f in findings), findings


@given(
    st.lists(st.floats(0, 1e6, allow_nan=False), max_size=30),
    st.integers(0, 40),
    st.sampled_from([50, 90, 99, 100]),
)
def test_nearest_rank_agrees_with_syncd_quantiles(times: list[float], extra: int, q: int) -> None:
    """The check's own nearest rank and syncd's quantiles give the same time for any sample
    (mirrors never served included): the two were written apart."""
    total = len(times) + extra
    ours = nearest_rank(times, total, q)
    theirs = quantiles(list(times), total, 0.0).get(q)
    if total == 0:
        assert theirs is None
        return
    assert (ours is None) == (theirs is None)
    if ours is not None and theirs is not None:
        assert math.isclose(ours, theirs)


def test_a_late_record_is_judged_from_the_client_s_own_end() -> None:
    """m2's record is 4 s after its file landed: its client says it finished 3.5 s after (its
    own tail, verifying what it serves), so the record's 0.5 s delivery is within the bound;
    the same record 2 s after the client's end is not."""
    planted: dict[str, float | None] = {**RECORD, "m2": START + 7.0}
    qs = record_quantiles(planted)
    ends: dict[str, float | None] = {m: t for m, t in DISK.items()}
    ends["m2"] = START + 6.5
    out = compare(planted, qs, dict(DISK), START, early_s=0.1, late_s=1.0, client_end=ends)
    assert out["findings"] == []
    assert out["client_tail_s"]["max"] == 3.5 and out["delivery_s"]["max"] == 0.5
    ends["m2"] = START + 5.0
    out = compare(planted, qs, dict(DISK), START, early_s=0.1, late_s=1.0, client_end=ends)
    assert any(f.startswith("m2: the record is 4.000 s later") for f in out["findings"])


def test_a_stored_run_is_compared_again_and_its_planted_mismatch_flagged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m benchmarks.propagation_check FILE` compares a served run's stored inputs
    again: a record planted 0.5 s before m3's file landed is flagged."""
    planted: dict[str, float | None] = {**RECORD, "m3": START + 3.5}
    stored = {
        "started_at": START,
        "bounds_s": {"early": 0.1, "late": 1.0},
        "inputs": {
            "record": planted,
            "quantiles": {str(q): v for q, v in record_quantiles(planted).items()},
            "disk": DISK,
            "client_end": {},
        },
    }
    path = tmp_path / "served.json"
    path.write_text(json.dumps({"runs": [{"n": 4, "contender": "x", "propagation": stored}]}))
    monkeypatch.setattr("sys.argv", ["propagation_check", str(path)])
    propagation_check.main()
    out = capsys.readouterr().out
    assert "! m3: the record is 0.500 s earlier than the disk" in out, out
    path.write_text(json.dumps({"runs": [{"n": 4, "contender": "x"}]}))
    with pytest.raises(SystemExit, match="no comparison in it"):
        propagation_check.main()
