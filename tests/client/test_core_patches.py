"""cdiffs and sign files: what the client checks without ClamAV's key, and the publish order of
a whole release tree. Pure."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from clientside.core.patches import (
    MAX_SIGN_SIZE,
    GzipCheck,
    ReleaseName,
    judge_release_file,
    release_name,
    served_release_files,
    sign_problem,
)
from clientside.core.publishplan import Entry, plan_publish
from devtools.harness.cvd import build_cdiff, build_sign, write_release_tree


def check(data: bytes, chunk: int = 7) -> str | None:
    c = GzipCheck()
    for i in range(0, len(data), chunk):
        c.feed(data[i : i + chunk])
    return c.result()


def test_names() -> None:
    assert release_name("daily-28034.cdiff") == ReleaseName("daily", 28034, "cdiff")
    assert release_name("daily-28034.cvd.sign") == ReleaseName("daily", 28034, "cvd.sign")
    assert release_name("daily-28034.cdiff.sign") == ReleaseName("daily", 28034, "cdiff.sign")
    for other in ("daily.cvd", "timestamp", "daily-.cdiff", "daily-1.cdiff.x", "../a-1.cdiff"):
        assert release_name(other) is None


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_a_whole_cdiff_passes_in_any_chunking(chunk: int) -> None:
    assert check(build_cdiff(28034), chunk) is None
    assert check(gzip.compress(b"OPEN daily.ndb\nCLOSE\n"), chunk) is None  # no signature
    assert check(build_cdiff(28034) + b"\n", chunk) is None


def test_hostile_cdiffs() -> None:
    good = build_cdiff(28034)
    stream_end = good.rindex(b":")
    assert check(good[: stream_end // 2]) == "truncated gzip stream"
    assert check(good[:10]) == "truncated gzip stream"
    assert check(b"") == "empty"
    assert (check(b"OPEN daily.ndb\n") or "").startswith("not a gzip stream")
    assert "not ':'" in (check(good[:stream_end] + b"GARBAGE") or "")
    assert "not ':'" in (check(good + b"\x00\x01") or "")
    assert "not ':'" in (check(good[:stream_end] + b":") or "")
    assert "bytes after" in (check(good + b"A" * 5000) or "")
    assert "not ':'" in (check(good[:stream_end] + good[:stream_end]) or "")  # two streams


def test_sign_files() -> None:
    assert sign_problem(60, build_sign("daily-28034.cvd")) is None
    assert "more than" in (sign_problem(MAX_SIGN_SIZE + 1, b"x") or "")
    assert sign_problem(0, b"") == "empty"
    assert sign_problem(4, b"\x00abc") == "not a text file"
    assert sign_problem(2, b"\xff\xfe") == "not a text file"


def test_judge_versions_against_the_staged_cvd() -> None:
    def judge(path: str, **kw: object) -> tuple[bool, str | None]:
        args: dict[str, object] = {"regular": True, "content_problem": None}
        args.update(kw)
        v = judge_release_file(path, cvd_versions={"daily": 28034}, **args)  # type: ignore[arg-type]
        return v.ok, v.kind

    assert judge("daily-28034.cdiff") == (True, None)
    assert judge("daily-28000.cdiff") == (True, None)
    assert judge("daily-28035.cdiff") == (False, "incoherent")
    assert judge("daily-28035.cdiff.sign") == (False, "incoherent")
    assert judge("daily-28034.cvd.sign") == (True, None)
    assert judge("daily-28033.cvd.sign") == (True, None)  # an older signature the source keeps
    assert judge("daily-28035.cvd.sign") == (False, "incoherent")
    assert judge("main-99.cvd.sign") == (True, None)  # main.cvd not staged: nothing to check
    assert judge("daily-28034.cdiff", regular=False) == (False, "corrupt_file")
    assert judge("daily-28034.cdiff", content_problem="truncated") == (False, "corrupt_file")


def test_served_range_and_signs() -> None:
    names = ["daily-5.cdiff", "daily-3.cdiff", "daily-7.cdiff", "daily.cvd", "daily-7.cvd.sign"]
    ranges, signs = served_release_files([*names, "daily-7.cdiff.sign", "local_x"])
    assert ranges == {"daily": (3, 7, 3)}
    assert signs == ["daily-7.cdiff.sign", "daily-7.cvd.sign"]
    assert served_release_files([]) == ({}, [])


def test_publish_order_of_a_whole_release_is_coherent(tmp_path: Path) -> None:
    """Every new cdiff and sign file is visible before the CVDs, the timestamp last."""
    names = write_release_tree(tmp_path, 28034, cdiffs=30, signs=True)
    staged = {n: Entry("file", 1, 100 + i) for i, n in enumerate(names)}
    served = {"daily.cvd": Entry("file", 1, 1), "daily-28004.cdiff": Entry("file", 1, 2)}
    plan = plan_publish(staged, served, patterns=["/local_*"], failed=frozenset())
    order = plan.publish
    assert sorted(order) == names
    assert order[-1] == "timestamp"
    first_cvd = min(order.index(n) for n in ("daily.cvd", "main.cvd", "bytecode.cvd"))
    patches = [n for n in names if release_name(n) is not None]
    assert len(patches) == 30 * 2 + 3
    assert all(order.index(n) < first_cvd for n in patches)
    assert plan.deletes == ["daily-28004.cdiff"]  # the source pruned it


def test_a_held_back_cdiff_is_not_published_and_not_deleted() -> None:
    staged = {"daily-9.cdiff": Entry("file", 1, 10), "daily.cvd": Entry("file", 1, 11)}
    served = {"daily-9.cdiff": Entry("file", 1, 1)}
    plan = plan_publish(staged, served, patterns=[], failed=frozenset({"daily-9.cdiff"}))
    assert plan.publish == ["daily.cvd"] and plan.held_back == ["daily-9.cdiff"]
    assert plan.deletes == []
