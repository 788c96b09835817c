"""The legacy config, parsed without a shell."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clientside.core.config import (
    DEFAULT_SOURCES,
    ConfigError,
    Source,
    build_config,
    hub_first,
    order_sources,
    parse_config_text,
    parse_exclude,
    parse_sources,
)

LEGACY = """\
# clam-clientsync.conf as the old guide wrote it
TO=/home/users/clamavdb/public_html
RSYNC_USER=foo
RSYNC_PASSWORD=guessme
MODULE="clamavdb"
EXCLUDE="--exclude local_*"
"""


def config(text: str, source: str | None = "rsync1.clamav.net"):
    return build_config(
        parse_config_text(text), home="/home/users/clamavdb", requested_source=source
    )


def test_legacy_config_of_the_old_guide() -> None:
    cfg = config(LEGACY)
    assert cfg.to == "/home/users/clamavdb/public_html"
    assert (cfg.rsync_user, cfg.rsync_password, cfg.module) == ("foo", "guessme", "clamavdb")
    assert cfg.protect_patterns == ("/local_*", "/index.html", "local_*")
    assert cfg.sources == (
        Source("rsync1.clamav.net", "rsync1.clamav.net", None),
        Source("rsync2.clamav.net", "rsync2.clamav.net", None),
    )
    assert cfg.state_dir == "/home/users/clamavdb/var/clam-clientsync"
    assert cfg.max_delete == 100 and cfg.warnings == ()


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("A=plain", "plain"),
        ("export A=x", "x"),
        ("A='it''s'", "its"),
        ("A='$(not run)'", "$(not run)"),
        ('A="a b"', "a b"),
        ('A="q\\"uote"', 'q"uote'),
        ("A=x # comment", "x"),
        ("A=", ""),
        ("A='one'\"two\"three", "onetwothree"),
    ],
)
def test_values_are_read_as_a_shell_would_assign_them(line: str, value: str) -> None:
    assert parse_config_text(line) == [(1, "A", value)]


@pytest.mark.parametrize(
    "line",
    [
        "TO=$(touch /tmp/x)",
        'TO="$(touch /tmp/x)"',
        "TO=`id`",
        "TO=${HOME}/x",
        'TO="${HOME}"',
        "TO=$HOME",
        "TO=/a; rm -rf /",
        "TO=/a b",
        "TO=/a|b",
        "TO='unterminated",
        'TO="unterminated',
        "not an assignment",
        "1X=2",
        "A=x\x1b[31m",
    ],
)
def test_anything_a_shell_would_expand_or_run_is_an_error_naming_the_line(line: str) -> None:
    with pytest.raises(ConfigError, match=r"^line 2: "):
        parse_config_text("# first\n" + line)


def test_exclude_pairs_become_patterns_and_anything_else_is_an_error() -> None:
    assert parse_exclude("--exclude local_* --exclude=/stats") == ["local_*", "/stats"]
    for bad in ("--delete", "--exclude", "--exclude local_* -e ssh", "--rsh=x", "--exclude ../x"):
        with pytest.raises(ConfigError, match="EXCLUDE"):
            parse_exclude(bad)


def test_sources_map_names_to_rsync_urls() -> None:
    got = parse_sources("r1=rsync://127.0.0.1:18731 r2=rsync://rsync2.clamav.net/")
    assert got == [Source("r1", "127.0.0.1", 18731), Source("r2", "rsync2.clamav.net", None)]
    for bad in ("r1=ssh://x", "r1=rsync://-x", "=rsync://x", "r1=rsync://x:99999", "r1"):
        with pytest.raises(ConfigError, match="SOURCES"):
            parse_sources(bad)
    with pytest.raises(ConfigError, match="twice"):
        parse_sources("a=rsync://x a=rsync://y")


def test_requested_source_comes_first_and_must_be_configured() -> None:
    srcs = tuple(parse_sources("a=rsync://x b=rsync://y c=rsync://z"))
    assert [s.name for s in order_sources(srcs, "b")] == ["b", "a", "c"]
    with pytest.raises(ConfigError, match="not configured"):
        order_sources(srcs, "d")


@pytest.mark.parametrize("requested", [None, *DEFAULT_SOURCES])
def test_without_sources_both_project_sources_are_known_and_the_other_is_the_fallback(
    requested: str | None,
) -> None:
    """The guide's minimal config (no SOURCES): a push with either key, and doctor (no source
    named), know rsync1 and rsync2, each ``rsync://NAME``. Failed on the code before it: with
    SOURCES unset only the requested name was a source (none for doctor), so no fallback."""
    cfg = config("TO=/srv/clamav\n", source=requested)
    assert cfg.sources == tuple(Source(n, n, None) for n in DEFAULT_SOURCES)
    for name in DEFAULT_SOURCES:
        (other,) = set(DEFAULT_SOURCES) - {name}
        assert [s.name for s in order_sources(cfg.sources, name)] == [name, other]


_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@given(st.lists(_LABEL, min_size=1, max_size=4).map(".".join))
def test_any_requested_host_name_without_sources_falls_back_to_both_project_sources(
    name: str,
) -> None:
    """Property: the legacy forced command may name any host; without SOURCES it is tried
    first (``rsync://NAME``), then rsync1 and rsync2, each once."""
    cfg = config("TO=/srv/clamav\n", source=name)
    names = [s.name for s in order_sources(cfg.sources, name)]
    assert names[0] == name and set(DEFAULT_SOURCES) <= set(names)
    assert len(names) == len(set(names)) == len({name, *DEFAULT_SOURCES})
    assert all(s.host == s.name and s.port is None for s in cfg.sources)


def test_hubs_are_named_mirrors_with_their_own_module_and_come_first_only_when_named() -> None:
    cfg = config(
        LEGACY
        + 'SOURCES="rsync1.clamav.net=rsync://rsync1.clamav.net"\n'
        + 'HUBS="hub-de=rsync://mirror.example.de/clamav hub-pl=rsync://[2001:db8::1]:8873"\n'
    )
    assert cfg.hubs == (
        Source("hub-de", "mirror.example.de", None, True, "clamav"),
        Source("hub-pl", "[2001:db8::1]", 8873, True, None),
    )
    assert [s.name for s in hub_first(cfg, "rsync1.clamav.net", None)] == ["rsync1.clamav.net"]
    assert [s.name for s in hub_first(cfg, "rsync1.clamav.net", "hub-pl")] == [
        "hub-pl",
        "rsync1.clamav.net",
    ]
    with pytest.raises(ConfigError, match="not one of this mirror's HUBS"):
        hub_first(cfg, "rsync1.clamav.net", "rsync1.clamav.net")
    assert config(LEGACY).hubs == ()
    for bad in (
        "hub=ssh://x",
        "hub=rsync://x/a/b",
        "hub=rsync://x/../etc",
        "hub=rsync://x:0",
        "hub",
        "rsync1.clamav.net=rsync://x",  # a hub's name is never a source's
        "h=rsync://x h=rsync://y",
    ):
        with pytest.raises(ConfigError, match="HUBS"):
            config(LEGACY + f'HUBS="{bad}"\n')


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("TO=relative/path", "absolute"),
        ("MAX_DELETE=-1", "whole number"),
        ("MAX_DELETE=1e9", "whole number"),
        ("TIMEOUT=0", "outside"),
        ("MODULE='a b'", "MODULE"),
        ("RSYNC_USER='x@y'", "RSYNC_USER"),
        ("RSYNC=rsync", "absolute"),
        ("STATE_DIR=var", "absolute"),
        ("STATE_DIR=~var", "^STATE_DIR: ~user paths are not supported"),  # found by the fuzzer
        ("LOG_FILE=~x/log", "^LOG_FILE: "),
    ],
)
def test_bad_values_are_config_errors(extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(LEGACY + extra + "\n")


def test_missing_to_and_unknown_keys() -> None:
    with pytest.raises(ConfigError, match="TO is not set"):
        config("MODULE=x\n")
    cfg = config(LEGACY + "FROBNICATE=1\n")
    assert cfg.warnings == ("config line 7: unknown key FROBNICATE ignored",)


def test_tilde_means_home_and_source_without_sources_must_be_a_host_name() -> None:
    cfg = config("TO=~/public_html\n")
    assert cfg.to == "/home/users/clamavdb/public_html"
    with pytest.raises(ConfigError, match="not a host name"):
        config("TO=/srv/x\n", source="-e")


def test_fs_type_of_known_mounts() -> None:
    from clientside.fsutil import fs_type

    assert fs_type("/proc/self") == "proc"
    assert fs_type("/") is not None
