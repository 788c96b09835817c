"""The publish plan: what becomes visible in TO, and what is removed."""

from __future__ import annotations

from clientside.core.publishplan import Entry, is_protected, plan_publish, seed_paths

P = ("/local_*", "local_*")


def f(ino: int) -> Entry:
    return Entry("file", 1, ino)


D = Entry("dir", 1, 999)


def test_plan_publishes_changed_files_cvds_last_and_keeps_local_files() -> None:
    staged = {
        "daily.cvd": f(10),
        "main.cvd": f(2),
        "daily-2.cdiff": f(11),
        "timestamp": f(12),
        "sub": D,
        "sub/x": f(13),
    }
    served = {
        "daily.cvd": f(1),
        "main.cvd": f(2),
        "local_logo.png": f(3),
        "stray": f(4),
        "old": D,
        "old/y": f(5),
        ".clam-clientsync-tmp.daily.cvd.1": f(6),
    }
    plan = plan_publish(staged, served, patterns=P, failed=frozenset())
    assert plan.mkdirs == ["sub"]
    assert plan.publish == ["daily-2.cdiff", "sub/x", "daily.cvd", "timestamp"]
    assert plan.deletes == ["old/y", "stray"]
    assert plan.rmdirs == ["old"]
    assert plan.held_back == [] and plan.conflicts == []


def test_failed_files_are_held_back() -> None:
    plan = plan_publish(
        {"daily.cvd": f(10)}, {"daily.cvd": f(1)}, patterns=P, failed=frozenset({"daily.cvd"})
    )
    assert plan.publish == [] and plan.held_back == ["daily.cvd"]


def test_conflicts_are_not_touched() -> None:
    plan = plan_publish({"x": f(1), "y": D}, {"x": D, "y": f(2)}, patterns=P, failed=frozenset())
    assert plan.conflicts == ["x", "y"] and plan.publish == [] and plan.deletes == []


def test_protection_patterns() -> None:
    assert is_protected("local_logo.png", ["/local_*"])
    assert not is_protected("sub/local_logo.png", ["/local_*"])
    assert is_protected("sub/local_logo.png", ["local_*"])
    assert is_protected("local_stats/index.html", ["/local_*"])
    assert is_protected("a/b/c", ["a/b"])
    assert not is_protected("daily.cvd", ["/local_*", "local_*"])


def test_seed_skips_protected_and_ours() -> None:
    served = {"daily.cvd": f(1), "local_x": f(2), "d": D, "d/e": f(3), "l": Entry("link", 1, 4)}
    assert seed_paths(served, P) == (["d"], ["d/e", "daily.cvd"])
