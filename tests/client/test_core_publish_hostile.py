"""The publish plan against a hostile source: names never published, links never followed,
parents that are not directories, and no deletion in a round that holds something back."""

from __future__ import annotations

import pytest

from clientside.core.cvd import database_name, is_checked_name
from clientside.core.publishplan import Entry, link_problem, plan_publish, server_interpretable

P = ("/local_*",)
D = Entry("dir", 1, 999)
L = Entry("link", 1, 998)


def f(ino: int) -> Entry:
    return Entry("file", 1, ino)


@pytest.mark.parametrize(
    "path",
    [
        ".htaccess",
        ".user.ini",
        ".well-known/acme-challenge/x",
        "sub/.htpasswd",
        "x.php",
        "x.PHP",
        "daily.php.cvd",
        "index.shtml",
        "cgi.pl",
        "web.config",
        "a.phar",
    ],
)
def test_names_a_web_server_could_interpret(path: str) -> None:
    assert server_interpretable(path)


@pytest.mark.parametrize(
    "path",
    [
        "daily.cvd",
        "main.cld",
        "bytecode.cud",
        "daily-28034.cdiff",
        "daily-28034.cdiff.sign",
        "main-62.cvd.sign",
        "timestamp",
        "dns.txt",
        "sub/index.html",
    ],
)
def test_release_names_are_never_interpretable(path: str) -> None:
    assert server_interpretable(path) is None


def test_every_database_alias_is_checked() -> None:
    for name in ("daily.cvd", "daily.cld", "daily.cud"):
        assert database_name(name) == "daily" and is_checked_name(name)
    assert is_checked_name("evil.cdiff") and is_checked_name("x.sign")
    assert not is_checked_name("timestamp")


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("daily.cvd", "old.bin"),  # a checked name is a regular file
        ("daily-1.cdiff", "daily-2.cdiff"),
        ("sub", "."),
        ("up", ".."),
        ("x", "a/../../etc"),
        ("x", "/etc/passwd"),
        ("x", ""),
        ("x", "a//b"),
        ("stats", "local_stats"),  # protected
        ("s", ".clam-clientsync/staging"),  # ours
        ("h", "sub/.htaccess"),
    ],
)
def test_links_that_are_never_published(path: str, target: str) -> None:
    assert link_problem(path, target, P)


def test_a_plain_link_inside_the_tree_is_published() -> None:
    assert link_problem("latest", "daily-2.txt", P) is None
    assert link_problem("sub/latest", "notes/a.txt", P) is None


def test_nothing_is_published_below_a_served_link_or_file() -> None:
    staged = {"sub": D, "sub/daily.cvd": f(10), "f": D, "f/x": f(11), "ok.txt": f(12)}
    served = {"sub": L, "f": f(1), "stale": f(2)}
    plan = plan_publish(staged, served, patterns=P, failed=frozenset())
    assert plan.publish == ["ok.txt"]
    assert plan.conflicts == ["f", "sub"]
    assert plan.deletes == [] and plan.kept == ["stale"]


def test_a_served_link_parent_found_in_the_listing_is_unsafe() -> None:
    # TO lists ``a`` as a link while staging has ``a/b`` below a directory ``a`` it does not
    # list (the listings are read apart): the child is refused by its served parent alone
    plan = plan_publish({"a/b": f(10)}, {"a": L}, patterns=P, failed=frozenset())
    assert plan.unsafe == [("a/b", "a")] and plan.publish == []


def test_a_held_back_directory_holds_back_what_it_holds() -> None:
    staged = {"daily.cud": D, "daily.cud/daily.cvd": f(10), "x": f(11)}
    plan = plan_publish(staged, {}, patterns=P, failed=frozenset({"daily.cud"}))
    assert plan.held_back == ["daily.cud"] and plan.mkdirs == [] and plan.publish == ["x"]


def test_refused_names_are_neither_published_nor_deleted() -> None:
    staged = {".htaccess": f(10), ".git": D, ".git/config": f(11), "daily.cvd": f(12)}
    served = {".htaccess": f(1), ".user.ini": f(2), "x.php": f(3), "stale": f(4)}
    plan = plan_publish(staged, served, patterns=P, failed=frozenset())
    assert plan.publish == ["daily.cvd"]
    assert [p for p, _ in plan.refused] == [".git", ".htaccess"]
    assert plan.deletes == ["stale"]  # a refused name is no failure: the rest is pruned


def test_a_link_under_a_checked_name_is_held_back_even_unverified() -> None:
    plan = plan_publish({"daily.cvd": L}, {"daily.cvd": f(1)}, patterns=P, failed=frozenset())
    assert plan.held_back == ["daily.cvd"] and plan.publish == []


def test_a_failure_on_a_name_staging_lacks_still_stops_every_deletion() -> None:
    # ``daily.cvd`` served, the source ships ``daily.cud`` instead: verification fails
    # ``daily.cvd`` although it is not staged; nothing else is removed in that round either
    staged = {"daily.cud": f(10)}
    served = {"daily.cvd": f(1), "daily-1.cdiff": f(2)}
    plan = plan_publish(staged, served, patterns=P, failed=frozenset({"daily.cvd"}))
    assert plan.deletes == [] and sorted(plan.kept) == ["daily-1.cdiff"]
