"""Reading the release from the source tree: a release still being written in place (a CVD
truncated, its header half there) is read again for a bounded moment, never taken as a bad
release at once; a CVD that stays bad is a one-line error naming it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from devtools.harness.cvd import build_cvd, write_release_tree
from devtools.harness.faults import ChurningFile
from syncd.errors import ConfigError
from syncd.files import read_source_tree

DAILY = 30012


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "source"
    root.mkdir()
    write_release_tree(root, DAILY, cdiffs=2, signs=False)
    return root


@pytest.mark.parametrize("landed", [0, 1, 200, 511])
def test_a_cvd_caught_shorter_than_its_header_is_read_again(tree: Path, landed: int) -> None:
    """The race the soak met: the reader opens daily.cvd just after the writer truncated it.
    The pause is where the writer finishes; the read after it is the release's."""
    whole = (tree / "daily.cvd").read_bytes()
    (tree / "daily.cvd").write_bytes(whole[:landed])
    pauses: list[float] = []

    def writer_finishes(seconds: float) -> None:
        pauses.append(seconds)
        (tree / "daily.cvd").write_bytes(whole)

    source = read_source_tree(tree, sleep=writer_finishes)
    assert source.headers["daily"].version == DAILY
    assert pauses == [0.1]
    tail = {t.db: t for t in source.tails}["daily"]
    assert tail.size == len(whole) and whole.endswith(tail.data)


def test_a_cvd_that_stays_bad_is_one_error_naming_it_after_a_bounded_wait(tree: Path) -> None:
    (tree / "main.cvd").write_bytes(b"ClamAV-VDB:not a header at all")
    pauses: list[float] = []
    with pytest.raises(ConfigError) as caught:
        read_source_tree(tree, tries=5, pause_s=0.25, sleep=pauses.append)
    assert pauses == [0.25] * 4
    message = str(caught.value)
    assert message.startswith(f"{tree}/main.cvd: ") and "\n" not in message


def test_a_tree_without_any_cvd_is_refused_at_once(tmp_path: Path) -> None:
    """Nothing to wait for: an empty tree is the wrong directory, not a release landing."""
    pauses: list[float] = []
    with pytest.raises(ConfigError, match=r"no daily\.cvd, main\.cvd or bytecode\.cvd"):
        read_source_tree(tmp_path, sleep=pauses.append)
    assert pauses == []


def test_a_release_rewritten_in_place_over_and_over_is_always_read_whole(tree: Path) -> None:
    """A real writer, truncating daily.cvd and writing it back in chunks with no pause before the
    first: every read of the tree meanwhile gives the release's header, never an error."""
    final = build_cvd("daily", DAILY, payload_size=64 * 1024)
    reads = 0
    with ChurningFile(tree / "daily.cvd", final, chunks=4, pause_s=0.001) as churn:
        while churn.rewrites < 30 and reads < 5000:
            assert read_source_tree(tree).headers["daily"].version == DAILY
            reads += 1
    assert churn.rewrites >= 30, f"only {churn.rewrites} rewrites in {reads} reads"


def test_the_expected_versions_and_the_pins_are_the_headers_read_once(tree: Path) -> None:
    """What a publish expects and what a push through a hub pins (``md5-<db>=``) come from the
    headers the tree was read with; an old header without a unix time reads the same."""
    (tree / "main.cvd").write_bytes(build_cvd("main", 62, with_unix_time=False))
    source = read_source_tree(tree)
    assert source.versions == {"daily": DAILY, "main": 62, "bytecode": 335}
    bodies = {db: (tree / f"{db}.cvd").read_bytes()[512:] for db in source.versions}
    assert source.pins == {db: hashlib.md5(body).hexdigest() for db, body in bodies.items()}
