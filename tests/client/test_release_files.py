"""A whole release tree (CVDs, cdiffs, sign files, timestamp) synced from real rsync daemons:
what is checked before it is served, what is pruned, and what the report says."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.harness.cvd import build_cdiff, build_sign, write_release_tree
from pushwire import report as wire_report
from syncd.publish import report as syncd_report
from tests.client.conftest import Mirror, fresh_mtime

KEEP = 5  # cdiffs the source keeps (cvdupdate keeps 30; small here)


def release(source: Path, daily: int, keep: int = KEEP) -> None:
    """Make `source` the release of `daily` as a source would: cdiffs of the last `keep`
    versions, one sign per CVD and cdiff; older cdiffs and CVD signs pruned."""
    for p in source.iterdir():
        if p.name.endswith(".cvd.sign") or p.name.endswith((".cdiff", ".cdiff.sign")):
            p.unlink()
    written = write_release_tree(source, daily, cdiffs=keep, signs=True)
    fresh_mtime(*(source / n for n in written))


def cdiff_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".cdiff"))


def test_the_whole_tree_is_served_and_reported(mirror: Mirror, source_tree: Path) -> None:
    release(source_tree, 28034)
    res = mirror.run(command="sync run-id=t-1 expect-daily=28034")
    rep = res.report
    assert res.rc == 0 and rep["status"] == "ok", res.stderr
    for p in source_tree.iterdir():
        assert (mirror.to / p.name).read_bytes() == p.read_bytes(), p.name
        assert not (mirror.to / p.name).is_symlink()
    assert rep["cdiffs"] == {"daily": {"first": 28030, "last": 28034, "count": 5}}
    signs = sorted(p.name for p in source_tree.iterdir() if p.name.endswith(".sign"))
    assert rep["signs"] == signs and "daily-28034.cvd.sign" in signs and len(signs) == 8
    # syncd reads the new keys tolerantly and keeps them
    parsed, doc = syncd_report.parse_report(res.stdout.encode())
    assert parsed.report_version == wire_report.REPORT_VERSION == 1
    assert doc["cdiffs"] == rep["cdiffs"] and doc["signs"] == signs
    assert mirror.run(command="status").report == rep


def test_cdiffs_are_pruned_only_when_the_source_prunes_them(
    mirror: Mirror, source_tree: Path
) -> None:
    release(source_tree, 28034)
    assert mirror.run().rc == 0
    assert cdiff_names(mirror.to) == [f"daily-{v}.cdiff" for v in range(28030, 28035)]
    kept = {v: (mirror.to / f"daily-{v}.cdiff").stat().st_ino for v in range(28031, 28035)}
    # the next release: the source drops daily-28030 and adds daily-28035
    release(source_tree, 28035)
    rep = mirror.run().report
    assert rep["status"] == "ok"
    assert cdiff_names(mirror.to) == cdiff_names(source_tree)
    assert "daily-28030.cdiff" not in cdiff_names(mirror.to)
    assert not (mirror.to / "daily-28030.cdiff.sign").exists()
    assert not (mirror.to / "daily-28034.cvd.sign").exists()  # the old CVD's sign went too
    assert rep["cdiffs"]["daily"] == {"first": 28031, "last": 28035, "count": 5}
    assert rep["files_deleted"] == 3  # daily-28030.cdiff, its sign, daily-28034.cvd.sign
    # what the source still has is still served (same bytes: write_release_tree rewrote them)
    for v in kept:
        assert (mirror.to / f"daily-{v}.cdiff").exists()
    # a source that keeps more history: nothing it still has is ever removed
    release(source_tree, 28036, keep=30)
    rep = mirror.run().report
    assert rep["status"] == "ok" and rep["files_deleted"] == 1  # daily-28035.cvd.sign
    assert cdiff_names(mirror.to) == cdiff_names(source_tree)
    assert rep["cdiffs"]["daily"] == {"first": 28007, "last": 28036, "count": 30}


def _truncate(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: data.rindex(b":") // 2])


def _not_gzip(p: Path) -> None:
    p.write_bytes(b"OPEN daily.ndb\nADD x\nCLOSE\n")


def _garbage(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: data.rindex(b":")] + b"<html>404</html>")


def _symlink(p: Path) -> None:
    p.unlink()
    p.symlink_to("daily-28034.cdiff")  # relative and inside the tree: still never published


def _other_version(p: Path) -> None:
    p.unlink()  # a signature of a release the CVD beside it is not: a half-updated source
    (p.parent / "daily-28036.cvd.sign").write_bytes(build_sign("daily-28036.cvd"))


def _oversize(p: Path) -> None:
    p.write_bytes(b"x" * (1 << 20))


HOSTILE = {
    "truncated-cdiff": ("daily-28035.cdiff", _truncate, "corrupt_file"),
    "not-gzip": ("daily-28035.cdiff", _not_gzip, "corrupt_file"),
    "trailing-garbage": ("daily-28035.cdiff", _garbage, "corrupt_file"),
    "symlinked-cdiff": ("daily-28035.cdiff", _symlink, "corrupt_file"),
    "sign-of-another-version": ("daily-28035.cvd.sign", _other_version, "incoherent"),
    "oversize-sign": ("daily-28035.cvd.sign", _oversize, "corrupt_file"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_release_file_is_held_back(mirror: Mirror, source_tree: Path, case: str) -> None:
    release(source_tree, 28034)
    assert mirror.run().rc == 0
    before = {p.name: p.read_bytes() for p in mirror.to.iterdir() if p.is_file()}
    release(source_tree, 28035)
    name, spoil, kind = HOSTILE[case]
    spoil(source_tree / name)
    bad = "daily-28036.cvd.sign" if case == "sign-of-another-version" else name
    if not (source_tree / bad).is_symlink():
        fresh_mtime(source_tree / bad)
    res = mirror.run()
    rep = res.report
    assert res.rc in (1, 75) and rep["status"] == "failed", res.stderr
    assert rep["error"]["kind"] == kind and bad in rep["error"]["message"], rep["error"]
    assert "(not published)" in rep["error"]["message"]
    served = mirror.to / bad
    assert not served.is_symlink()
    assert served.read_bytes() == before[bad] if bad in before else not served.exists()
    # everything else of the release is served
    assert rep["databases"]["daily"]["version"] == 28035
    for p in source_tree.iterdir():
        if p.name != bad:
            assert (mirror.to / p.name).read_bytes() == p.read_bytes(), p.name
    assert bad not in rep["signs"]
    # a round that holds something back deletes nothing: daily-28030 goes in the next good one
    assert rep["files_deleted"] == 0
    assert any("deletions postponed" in w for w in rep["warnings"]), rep["warnings"]
    assert (mirror.to / "daily-28030.cdiff").exists()
    if bad.endswith(".cdiff"):
        assert rep["cdiffs"]["daily"] == {"first": 28030, "last": 28034, "count": 5}


def test_a_served_cdiff_corrupted_at_the_source_stays_as_served(
    mirror: Mirror, source_tree: Path
) -> None:
    release(source_tree, 28034)
    assert mirror.run().rc == 0
    good = (mirror.to / "daily-28033.cdiff").read_bytes()
    _truncate(source_tree / "daily-28033.cdiff")
    fresh_mtime(source_tree / "daily-28033.cdiff")
    rep = mirror.run().report
    assert rep["error"]["kind"] == "corrupt_file"
    assert "daily-28033.cdiff" in rep["error"]["message"]
    assert (mirror.to / "daily-28033.cdiff").read_bytes() == good
    assert rep["cdiffs"]["daily"]["count"] == 5
    # fixed at the source: the next sync serves it (the corrupt copy was not kept in staging)
    (source_tree / "daily-28033.cdiff").write_bytes(build_cdiff(28033))
    fresh_mtime(source_tree / "daily-28033.cdiff")
    rep = mirror.run().report
    assert rep["status"] == "ok", rep["error"]
    assert (mirror.to / "daily-28033.cdiff").read_bytes() == build_cdiff(28033)
