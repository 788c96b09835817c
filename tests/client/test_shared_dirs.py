"""Directories something else writes while the client reads them: the state directory (other
clients), TO's ``local_*`` (the admin's stats job) and the shared log. A name that vanishes
between the listing and the look is skipped, never an error.

The race is made certain here (a listing whose names are then renamed away); the real one, 24
clients at once, is ``test_concurrent_pushes``. Proven: with the skips removed
(``check_state_dir``, ``fsutil.listing``) or the old rotation (``os.path.exists`` then
``os.replace``) restored, each test here but the missing root's failed with a
``FileNotFoundError`` (the log: a logging error, then every later line lost).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from clientside import logsetup
from clientside.core.config import ConfigError
from clientside.fsutil import listing
from clientside.statedir import check_state_dir


class StaleListing:
    """What ``os.scandir`` returned just before another process renamed or removed some of
    the names it listed: real entries, some of them gone (the race, made certain)."""

    def __init__(self, entries: list[os.DirEntry[str]]) -> None:
        self.entries = entries

    def __enter__(self) -> StaleListing:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __iter__(self) -> Iterator[os.DirEntry[str]]:
        return iter(self.entries)


@pytest.fixture
def vanishing(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """``vanishing(path)``: a file is renamed away just after its directory is listed, a
    directory is removed just before it is listed itself, as another process does."""
    real = os.scandir

    def arm(victim: Path) -> None:
        def scandir(path: str) -> StaleListing:
            if Path(path) == victim and victim.is_dir():
                victim.rmdir()  # gone just before it is entered
            with real(path) as it:
                entries = list(it)
            if Path(path) == victim.parent and victim.is_file():
                os.replace(victim, victim.parent / "renamed")  # gone just after it is listed
            return StaleListing(entries)

        monkeypatch.setattr(os, "scandir", scandir)

    return arm


def test_check_state_dir_skips_what_another_client_renamed(
    tmp_path: Path, vanishing: Callable[[Path], None]
) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / ".update-required.tmp.4242").write_bytes(b"run-1\n")
    vanishing(state / ".update-required.tmp.4242")
    check_state_dir(str(state))


def test_check_state_dir_still_refuses_what_is_there(
    tmp_path: Path, vanishing: Callable[[Path], None]
) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / ".tmp.1").write_bytes(b"")
    (state / "evil").symlink_to("/etc/passwd")
    vanishing(state / ".tmp.1")
    with pytest.raises(ConfigError, match="symbolic link"):
        check_state_dir(str(state))


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_listing_skips_what_vanished_under_local_dirs(
    tmp_path: Path, vanishing: Callable[[Path], None], kind: str
) -> None:
    to = tmp_path / "to"
    stats = to / "local_stats"
    stats.mkdir(parents=True)
    (to / "daily.cvd").write_bytes(b"x")
    victim = stats / "usage_202612.html"
    if kind == "dir":
        victim.mkdir()  # listed in local_stats, gone before it is entered
    else:
        victim.write_bytes(b"x")  # listed, gone before its stat
    vanishing(victim)
    found = listing(str(to))
    assert found["daily.cvd"].kind == "file"
    if kind == "file":
        assert "local_stats/usage_202612.html" not in found


def test_listing_of_a_missing_root_is_still_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        listing(str(tmp_path / "absent"))


def test_log_rotation_skips_a_generation_another_client_rotated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two clients rotate the shared log at once: the names the other one moved are gone by
    the time this one moves them: those are skipped, and the log goes on."""
    monkeypatch.setattr(logsetup, "LOG_MAX_BYTES", 400)
    path = tmp_path / "client.log"
    logger = logsetup.setup([], stderr=False)
    logsetup.add_file(logger, str(path))
    real_replace = os.replace

    def other_client_first(src: str, dst: str) -> None:
        with contextlib.suppress(FileNotFoundError):  # the other client moved it just now
            real_replace(src, f"{src}.other")
        real_replace(src, dst)

    errors: list[str] = []
    monkeypatch.setattr(logging, "raiseExceptions", True)
    monkeypatch.setattr(
        logging.Handler, "handleError", lambda self, record: errors.append(record.getMessage())
    )
    monkeypatch.setattr(logsetup.os, "replace", other_client_first)
    try:
        for i in range(40):
            logger.info("line %03d of the run", i)
    finally:
        logsetup.close(logger)
    assert errors == []
    assert "line 039 of the run" in path.read_text()  # the log goes on after each rotation
    assert (tmp_path / "client.log.other").exists()  # it did rotate, under the other
