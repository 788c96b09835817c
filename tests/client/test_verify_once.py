"""The staging tree is verified once per source whose rsync succeeds: each staged file is read
once for it, and the publish uses that verification (judged again, without reading, once the
files a source sent corrupt are removed or under a hub's pins).

Proven to fail: with ``clientside/verbs/sync.py``, ``verification.py`` and ``publish.py`` as
they were before (the publish verified the tree again), the round tests counted 2 and 3
verifications and every staged database read twice; with ``StagedTree.without`` returning the
tree as it was, the judgement test failed (the removed daily.cvd still judged, no
expectation_unmet)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

import clientside.verification
from clientside.staging import quarantine
from clientside.verification import Verifier, verify_staging
from devtools.harness.cvd import corrupt_body, write_release, write_release_tree
from tests.client.conftest import (
    R2,
    Mirror,
    Result,
    corrupt_at_rsync1_good_at_rsync2,
    fresh_mtime,
)
from tests.client.test_answers import answer

STAGING = "/.clam-clientsync/staging/"


class Counted:
    """How often the staging tree was verified, and each staged file read, in one push."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.verifications = 0
        self.reads: Counter[str] = Counter()
        verify, facts = clientside.verification.verify_staging, Verifier.facts

        def counting_verify(*args: object, **kwargs: object) -> object:
            self.verifications += 1
            return verify(*args, **kwargs)  # type: ignore[arg-type]

        def counting_facts(verifier: Verifier, path: str) -> object:
            if STAGING in path:
                self.reads[path.split(STAGING, 1)[1]] += 1
            return facts(verifier, path)

        monkeypatch.setattr(clientside.verification, "verify_staging", counting_verify)
        monkeypatch.setattr(Verifier, "facts", counting_facts)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counted]:
    yield Counted(monkeypatch)


def push(mirror: Mirror, monkeypatch: pytest.MonkeyPatch) -> Result:
    return answer(mirror, monkeypatch, "sync run-id=once expect-daily=28034")


def test_one_source_one_verification_each_file_read_once(
    mirror: Mirror, source_tree: Path, counted: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh_mtime(*write_release(source_tree, 28034).values())
    rep = push(mirror, monkeypatch).report
    assert rep["status"] == "ok" and rep["databases"]["daily"]["version"] == 28034, rep
    assert counted.verifications == 1
    assert counted.reads == {"daily.cvd": 1, "main.cvd": 1, "bytecode.cvd": 1}


def test_a_corrupt_first_source_then_a_good_one_is_two_verifications(
    tmp_path: Path,
    mirror: Mirror,
    source_tree: Path,
    counted: Counted,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with corrupt_at_rsync1_good_at_rsync2(tmp_path, mirror, source_tree, 28034):
        rep = push(mirror, monkeypatch).report
    assert rep["status"] == "ok" and rep["source_used"] == R2, rep
    assert counted.verifications == 2
    assert set(counted.reads.values()) == {2}  # once per source


def test_corrupt_at_every_source_publishes_the_rest_from_the_last_verification(
    mirror: Mirror, source_tree: Path, counted: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh_mtime(*write_release(source_tree, 28034, main=63).values())
    corrupt_body(source_tree / "daily.cvd")
    rep = push(mirror, monkeypatch).report
    assert counted.verifications == 2 and set(counted.reads.values()) == {2}
    # daily.cvd was removed from staging: judged again without it, the request's expectation
    # is unmet first, as a verification of the tree that is left finds
    assert rep["error"]["kind"] == "expectation_unmet", rep["error"]
    assert "daily.cvd" not in mirror.served() and rep["databases"]["main"]["version"] == 63


def test_judged_again_is_what_verifying_the_tree_anew_finds(tmp_path: Path) -> None:
    staging, to, state = tmp_path / "staging", tmp_path / "to", tmp_path / "state"
    state.mkdir()
    write_release(to, 28033)
    write_release_tree(staging, 28034, cdiffs=3)
    corrupt_body(staging / "daily.cvd")
    (staging / "main.cvd").unlink()
    (staging / "main.cvd").mkdir()  # a directory under a database name
    (staging / "main.cvd" / "x").write_text("x")
    expect, pins = {"daily": 28034, "main": 62}, {"bytecode": "0" * 32}

    def anew(pins: dict[str, str]) -> tuple[object, ...]:
        tree = verify_staging(
            Verifier(str(state)), staging=str(staging), to=str(to), expect=expect, pins=pins
        )
        return tree.findings

    tree = verify_staging(
        Verifier(str(state)), staging=str(staging), to=str(to), expect=expect, pins=pins
    )
    removed = quarantine(str(staging), tree.bad(), {})
    assert removed == {"daily.cvd", "main.cvd"}
    left = tree.without(removed)
    assert left.findings == anew(pins)
    assert left.under({}).findings == anew({})
    assert left.under(pins) is left and left.without(frozenset()) is left
