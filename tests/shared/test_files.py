"""syncd's one way of writing a file: atomic, durable, never through a symlink, and safe when
two writers replace the same file at once (the monitor's status page, say)."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from syncd.files import write_atomic


def test_replaces_the_file_with_the_mode_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "index.html"
    target.write_text("old")
    write_atomic(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    write_atomic(target, b"bytes", mode=0o600)
    assert target.read_bytes() == b"bytes"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html"]


def test_a_symlink_in_its_place_is_replaced_never_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    link = tmp_path / "timestamp"
    link.symlink_to(victim)
    stamp = "1767225600\n"  # file contents only (noqa: date)
    write_atomic(link, stamp)
    assert not link.is_symlink() and link.read_text() == stamp
    assert victim.read_text() == "keep me"


def test_concurrent_writers_never_share_a_temporary_name(tmp_path: Path) -> None:
    """A fixed temporary name lets one writer rename the other's half-written file away:
    the second rename then fails with FileNotFoundError, or publishes the wrong content."""
    target = tmp_path / "pushsync.prom"
    errors: list[BaseException] = []

    def writer(text: str) -> None:
        try:
            for _ in range(200):
                write_atomic(target, text * 1000)
        except BaseException as err:  # collected for the assertion
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(c,)) for c in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert target.read_text() in ("a" * 1000, "b" * 1000)
    assert [p.name for p in tmp_path.iterdir()] == ["pushsync.prom"]


def test_a_failed_write_removes_its_temporary(tmp_path: Path) -> None:
    target = tmp_path / "dir-in-the-way"
    target.mkdir()
    (target / "x").write_text("")  # a non-empty directory cannot be renamed over
    with pytest.raises(OSError):
        write_atomic(target, "x")
    assert sorted(os.listdir(tmp_path)) == ["dir-in-the-way"]
