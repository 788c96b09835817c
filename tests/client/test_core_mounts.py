"""The mount holding a path, read from ``/proc/mounts``' text (``core.mounts``): the deepest
mount by whole path components, a later line winning over one mounted under it.

Proven to fail: with the comparison in ``mount_type`` made ``startswith(mount)`` (no ``/``
after the mount point), ``/srvx`` was taken for a path under ``/srv`` and both tests failed;
with ``>=`` made ``>`` (the first of two lines for one mount point wins), the over-mount
example and the property failed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from clientside.core.mounts import mount_type

MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
proc /proc proc rw 0 0
srv:/export /srv nfs4 rw 0 0
/dev/sdb1 /srv/mirror\\040data xfs rw 0 0
short line
tmpfs /srv tmpfs rw 0 0
"""


def test_the_deepest_mount_by_whole_components_and_the_last_of_two() -> None:
    assert mount_type(MOUNTS, "/") == "ext4"
    assert mount_type(MOUNTS, "/proc/self") == "proc"
    assert mount_type(MOUNTS, "/srvx/a") == "ext4"  # not under /srv
    assert mount_type(MOUNTS, "/srv/a") == "tmpfs"  # mounted over the nfs4 /srv
    assert mount_type(MOUNTS, "/srv/mirror data/daily.cvd") == "xfs"  # \040 is a space
    assert mount_type("", "/srv") is None
    assert mount_type("proc /proc proc rw 0 0\n", "/home") is None


components = st.lists(st.sampled_from(["a", "ab", "b"]), max_size=3)
paths = components.map(lambda parts: "/" + "/".join(parts))


@given(st.lists(st.tuples(paths, st.sampled_from(["ext4", "nfs", "xfs"])), max_size=6), paths)
@settings(max_examples=300)
def test_the_type_is_that_of_the_last_deepest_mount_holding_the_path(
    table: list[tuple[str, str]], path: str
) -> None:
    text = "".join(f"dev {mount} {kind} rw 0 0\n" for mount, kind in table)

    def holds(mount: str) -> bool:
        parts = [p for p in mount.split("/") if p]
        return [p for p in path.split("/") if p][: len(parts)] == parts

    holding = [(mount, kind) for mount, kind in table if holds(mount)]
    if not holding:
        assert mount_type(text, path) is None
        return
    deepest = max(len(mount) for mount, _ in holding)
    assert mount_type(text, path) == [k for m, k in holding if len(m) == deepest][-1]
