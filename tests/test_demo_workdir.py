"""The demo's working directory: it never deletes what it did not make.

Proven to fail before the fix: run against the previous devtools/demo.py, `--workdir DIR` with a
file of the user's in DIR deleted the file (shutil.rmtree of the whole directory) and went on.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devtools import demo
from devtools.demo import MARKER, DemoError, prepare_workdir

ROOT = Path(__file__).resolve().parent.parent


def test_a_directory_the_demo_did_not_make_is_refused_and_left_alone(tmp_path: Path) -> None:
    mine = tmp_path / "work"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's")
    with pytest.raises(DemoError, match="not empty and was not made by the demo"):
        prepare_workdir(mine)
    assert (mine / "notes.txt").read_text() == "the user's"
    assert not (mine / MARKER).exists()


def test_the_command_refuses_in_one_line_before_starting_anything(tmp_path: Path) -> None:
    mine = tmp_path / "work"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's")
    proc = subprocess.run(
        [sys.executable, "-m", "devtools.demo", "--mirrors", "1", "--workdir", str(mine)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"demo: --workdir {mine} is not empty and was not made by the demo (it has no "
        f"{MARKER}): give a new or empty directory; nothing was deleted"
    ]
    assert proc.stdout == "" and (mine / "notes.txt").read_text() == "the user's"


def test_the_checkout_and_the_current_directory_are_refused_even_when_marked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never tried on the real checkout: a bug here must not be able to delete it."""
    checkout = tmp_path / "src" / "pushsync"
    checkout.mkdir(parents=True)
    (tmp_path / "src" / MARKER).write_text("")  # even a marker does not make it the demo's
    monkeypatch.setattr(demo, "ROOT", checkout)
    with pytest.raises(DemoError, match="holds this checkout"):
        prepare_workdir(tmp_path / "src")
    assert checkout.is_dir()
    marked = tmp_path / "marked"
    (marked / "inside").mkdir(parents=True)
    (marked / MARKER).write_text("")
    monkeypatch.chdir(marked / "inside")
    with pytest.raises(DemoError, match="the current directory"):
        prepare_workdir(marked)
    assert (marked / "inside").is_dir()


def test_a_directory_an_earlier_demo_made_is_emptied_without_following_links(
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("not the demo's")
    first = prepare_workdir(tmp_path / "new" / "demo")  # a new directory: made and marked
    assert (first / MARKER).is_file() and sorted(p.name for p in first.iterdir()) == [MARKER]
    (first / "state.sqlite").write_text("old run")
    (first / "mirrors").mkdir()
    (first / "mirrors" / "link").symlink_to(elsewhere, target_is_directory=True)
    again = prepare_workdir(first)
    assert sorted(p.name for p in again.iterdir()) == [MARKER]
    assert (elsewhere / "keep").read_text() == "not the demo's"


def test_an_empty_directory_is_used_and_a_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (prepare_workdir(empty) / MARKER).is_file()
    (tmp_path / "file").write_text("x")
    with pytest.raises(DemoError, match="is not a directory"):
        prepare_workdir(tmp_path / "file")
