"""A disk that runs out of inodes is as full as one that runs out of blocks: ``disk_full``, not
worth a retry by the publisher (a retry finds the disk as full), and the served release stays.

Proven: before ENOSPC from rsync's messages and from OSErrors was read as ``disk_full``, the
real tmpfs case reported ``rsync_failed`` (exit 23, "mkstemp ... No space left on device"),
retryable, and the unit cases failed the same way.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clientside.core.rsyncplan import classify, disk_full_errno
from devtools.harness.cvd import write_release
from tests.client.conftest import Mirror, fresh_mtime


@pytest.fixture
def few_inodes(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs with plenty of space but few inodes."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the inode case is unit-tested only")
    mount = tmp_path / "few-inodes"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m,nr_inodes=64", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount tmpfs here: {done.stderr.decode(errors='replace')}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _use_every_inode(directory: Path) -> int:
    """Create empty files in `directory` until the filesystem has no inode left; return how
    many."""
    directory.mkdir()
    count = 0
    while True:
        try:
            (directory / f"f{count}").touch()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
            return count
        count += 1


def test_no_inode_left_is_disk_full_and_keeps_serving(
    few_inodes: Path, mirror: Mirror, source_tree: Path
) -> None:
    mirror.to = few_inodes / "public_html"
    mirror.to.mkdir()
    mirror.write_config()
    assert mirror.run().rc == 0
    served = (mirror.to / "daily.cvd").read_bytes()
    assert _use_every_inode(mirror.to / "local_stats") > 0
    stat = os.statvfs(mirror.to)
    assert stat.f_favail == 0 and stat.f_bavail > 1000  # inodes gone, blocks plenty
    fresh_mtime(*write_release(source_tree, 28034).values())
    res = mirror.run(command="sync run-id=inodes")
    rep = res.report
    assert rep["error"]["kind"] == "disk_full", rep
    assert rep["error"]["retryable"] is False
    assert res.rc == 1
    assert (mirror.to / "daily.cvd").read_bytes() == served
    assert rep["databases"]["daily"]["version"] == 28033
    # inodes come back: the next run publishes
    for p in (mirror.to / "local_stats").iterdir():
        p.unlink()
    again = mirror.run().report
    assert again["status"] == "ok" and again["databases"]["daily"]["version"] == 28034


@pytest.mark.parametrize(
    "line",
    [
        'rsync: [receiver] mkstemp "/m/.~tmp~/daily.cvd" failed: No space left on device (28)',
        'rsync: [receiver] write failed on "/m/daily.cvd": Disk quota exceeded (122)',
        'rsync: mkdir "/m/.~tmp~" failed: No space left on device (28)',
    ],
)
def test_rsync_out_of_space_messages_are_disk_full(line: str) -> None:
    for code in (11, 12, 23):
        outcome = classify(code, f"{line}\nrsync error: some files could not be transferred\n")
        assert (outcome.kind, outcome.failover) == ("disk_full", False), (code, outcome)


def test_other_rsync_failures_keep_their_kind() -> None:
    line = 'rsync: [sender] link_stat "/x" failed: No such file or directory (2)'
    assert classify(23, line).kind == "rsync_failed"
    # a source's own full disk, in its @ERROR line, is not ours
    assert classify(5, "@ERROR: max connections (1) reached -- try again later").kind == (
        "rsync_busy"
    )


_NOISE = st.lists(st.text(max_size=80).filter(lambda t: "space" not in t and "quota" not in t))
_FULL = ("No space left on device (28)", "Disk quota exceeded (122)", "Disc quota exceeded (69)")


@given(
    before=_NOISE,
    after=_NOISE,
    code=st.sampled_from([1, 2, 3, 11, 12, 13, 14, 16, 23, 30, 35]),
    role=st.sampled_from(["[receiver] ", "[generator] ", ""]),
    full=st.sampled_from(_FULL),
    name=st.text(min_size=1, max_size=40).filter(lambda t: "\n" not in t and "\r" not in t),
)
def test_our_side_out_of_space_is_disk_full_whatever_rsync_says_around_it(
    before: list[str], after: list[str], code: int, role: str, full: str, name: str
) -> None:
    line = f'rsync: {role}write failed on "{name}": {full}'
    outcome = classify(code, "\n".join([*before, line, *after]))
    assert (outcome.verdict, outcome.kind, outcome.failover) == ("local", "disk_full", False)
    # the source's own full disk is the source's failure, never ours
    sender = classify(code, "\n".join([*before, line.replace(role, "[sender] ", 1), *after]))
    if role and code != 11:  # exit 11 is "error in file I/O": disk_full by its code alone
        assert sender.kind != "disk_full"


def test_disk_full_errnos() -> None:
    assert disk_full_errno(errno.ENOSPC) and disk_full_errno(errno.EDQUOT)
    assert not disk_full_errno(errno.EIO) and not disk_full_errno(None)


def test_no_inode_left_for_the_publish_is_disk_full(
    few_inodes: Path, mirror: Mirror, source_tree: Path, tmp_path: Path
) -> None:
    """rsync fills staging, then the inodes run out before the publish links the files into
    TO (a tmpfs counts each hard link). Proven: this reported ``publish_failed`` before."""
    mirror.to = few_inodes / "public_html"
    mirror.to.mkdir()
    mirror.write_config()
    assert mirror.run().rc == 0
    served = (mirror.to / "daily.cvd").read_bytes()
    fill = mirror.to / "local_stats"
    fill.mkdir()
    wrapper = tmp_path / "rsync-then-fill"
    wrapper.write_text(
        "#!/bin/sh\n"
        '/usr/bin/rsync "$@"; rc=$?\n'
        '[ "$1" = "--version" ] && exit $rc\n'
        f'i=0; while touch "{fill}/f$i" 2>/dev/null; do i=$((i+1)); done\n'
        "exit $rc\n"
    )
    wrapper.chmod(0o755)
    mirror.write_config(RSYNC=str(wrapper))
    fresh_mtime(*write_release(source_tree, 28034).values())
    res = mirror.run()
    rep = res.report
    assert [a["exit_code"] for a in rep["attempts"]] == [0]  # rsync itself succeeded
    assert rep["error"]["kind"] == "disk_full", rep
    assert "No space left on device" in rep["error"]["message"]
    assert res.rc == 1
    assert (mirror.to / "daily.cvd").read_bytes() == served
