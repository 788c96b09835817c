"""The release as a set of files: which of them a mirror must serve whole, from the tree."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.release.manifest import ReleaseFile, history_warning, manifest, whole

RELEASE = {"daily": 28034, "main": 62, "bytecode": 335}
TREE = [
    "bytecode.cvd",
    "bytecode-335.cvd.sign",
    "daily.cvd",
    "daily-28034.cvd.sign",
    "daily-28032.cdiff",
    "daily-28033.cdiff",
    "daily-28034.cdiff",
    "daily-28033.cdiff.sign",
    "daily-28034.cdiff.sign",
    "main.cvd",
    "main-62.cvd.sign",
    "main-61.cvd.sign",  # an older signature the source still keeps: not the release's
    "timestamp",
    "local_logo.png",
]


def test_proof_is_the_current_cdiff_and_the_current_signatures() -> None:
    m = manifest(RELEASE, TREE)
    assert m.cdiffs == (28032, 28033, 28034)
    assert m.proof_names() == (
        "daily-28034.cdiff",
        "bytecode-335.cvd.sign",
        "daily-28034.cdiff.sign",
        "daily-28034.cvd.sign",
        "main-62.cvd.sign",
    )


def test_main_and_bytecode_cdiffs_are_proved_too() -> None:
    names = [
        *TREE,
        "main-62.cdiff",
        "main-61.cdiff",
        "bytecode-335.cdiff",
        "bytecode-335.cdiff.sign",
    ]
    proof = manifest(RELEASE, names).proof_names()
    assert proof[:3] == ("bytecode-335.cdiff", "daily-28034.cdiff", "main-62.cdiff")
    assert "bytecode-335.cdiff.sign" in proof and "main-61.cdiff" not in proof
    assert manifest(RELEASE, names).cdiffs == (28032, 28033, 28034)  # the daily history


def test_a_tree_without_cdiffs_or_signatures_proves_only_its_cvds() -> None:
    assert manifest(RELEASE, ["daily.cvd", "main.cvd", "bytecode.cvd"]).proof_names() == ()
    # a cdiff history that stops short of the current version proves nothing it lacks
    assert manifest(RELEASE, ["daily-28033.cdiff"]).proof_names() == ()


@pytest.mark.parametrize(
    "name",
    [
        "daily-x.cdiff",
        "daily-28034.cdiff.bak",
        "daily-28034.cdiff~",
        ".daily-28034.cdiff",
        "daily--1.cdiff",
        "daily-1234567890.cdiff",  # ten digits: no version of ours
        "daily-28034.cdiff\n",
        "evil-28034.cvd.sign",
    ],
)
def test_odd_names_are_not_release_files(name: str) -> None:
    m = manifest(RELEASE, [name])
    assert m.cdiffs == () and m.signs == () and m.proof_names() == ()


@given(st.lists(st.text(max_size=40), max_size=30))
def test_any_listing_yields_only_well_formed_proof_names(names: list[str]) -> None:
    for name in manifest(RELEASE, names).proof_names():
        assert name in names and "/" not in name and name.isascii()


def test_whole_names_the_problem() -> None:
    body = b"\x1f\x8b cdiff"
    good = ReleaseFile("daily-28034.cdiff", len(body), hashlib.sha256(body).hexdigest())
    assert whole(good, 200, body, good.sha256) is None
    assert whole(good, 404, b"", "") == "/daily-28034.cdiff answered HTTP 404"
    short = whole(good, 200, body[:3], hashlib.sha256(body[:3]).hexdigest())
    assert short == f"/daily-28034.cdiff is 3 bytes, the release's is {len(body)}"
    other = b"\x1f\x8b cdifF"
    problem = whole(good, 200, other, hashlib.sha256(other).hexdigest())
    assert problem is not None and problem.startswith("/daily-28034.cdiff differs")


def test_a_short_cdiff_history_is_warned_about() -> None:
    m = manifest(RELEASE, TREE)
    assert m.missing_cdiffs(3) == () and history_warning(m, 3) is None
    assert m.missing_cdiffs(5) == (28030, 28031)
    warning = history_warning(m, 30)
    assert warning is not None and warning.startswith("the source tree lacks 27 of the last 30")
    assert "daily-28005.cdiff, daily-28006.cdiff, daily-28007.cdiff ..." in warning
    assert m.missing_cdiffs(0) == ()
