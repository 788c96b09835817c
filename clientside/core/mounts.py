"""Which mount holds a path, from the text of ``/proc/mounts`` (read by ``fsutil.fs_type``), and
which filesystem types are remote: a lock there may not hold across hosts."""

from typing import Optional

REMOTE_FS = ("nfs", "nfs4", "cifs", "smbfs", "smb3", "fuse.sshfs", "ceph", "glusterfs", "9p")


def mount_type(mounts_text: str, real_path: str) -> Optional[str]:
    """Given ``/proc/mounts``' text and a resolved absolute path, return the filesystem type of
    the deepest mount holding the path (the last such line when one is mounted over another),
    or None when no line does."""
    best, best_type = "", None
    for line in mounts_text.split("\n"):
        fields = line.split()
        if len(fields) < 3:
            continue
        mount = fields[1].replace("\\040", " ")
        holds = real_path == mount or real_path.startswith(mount.rstrip("/") + "/")
        if holds and len(mount) >= len(best):
            best, best_type = mount, fields[2]
    return best_type
