"""The account a test mirror runs as.

As root (CI), mirrors run as a dedicated system user with ``/bin/sh`` as login shell, so that
sshd's forced commands neither run as root nor read root's (possibly heavy) shell rc files.
As a normal user, mirrors run as that user.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path

TEST_USER = "pushsync-test"
TEST_HOME = Path("/var/lib/pushsync-test")


@dataclass(frozen=True)
class MirrorAccount:
    name: str
    uid: int
    gid: int
    home: Path
    shell: str


def _from_pwd(entry: pwd.struct_passwd) -> MirrorAccount:
    return MirrorAccount(
        entry.pw_name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir), entry.pw_shell
    )


def mirror_account() -> MirrorAccount:
    """Return the account test mirrors run as, creating the system user when root."""
    if os.geteuid() != 0:
        return _from_pwd(pwd.getpwuid(os.geteuid()))
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--create-home",
                "--home-dir",
                str(TEST_HOME),
                "--shell",
                "/bin/sh",
                "--user-group",
                TEST_USER,
            ],
            check=True,
            capture_output=True,
        )
    # '*': no password can log in, but the account is not "locked" ('!'), which sshd refuses
    # outright without PAM even for public-key logins. Changed only when needed: another
    # test session may be logging in as this user right now.
    if _locked(TEST_USER):
        subprocess.run(["usermod", "-p", "*", TEST_USER], check=True, capture_output=True)
    TEST_HOME.chmod(0o755)
    return _from_pwd(pwd.getpwnam(TEST_USER))


def _locked(user: str) -> bool:
    for line in Path("/etc/shadow").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return fields[1].startswith("!")
    return True


def give_to(account: MirrorAccount, *paths: Path) -> None:
    """Make `account` own `paths` (recursively) when we are root; no-op otherwise."""
    if os.geteuid() != 0 or account.uid == 0:
        return
    for top in paths:
        os.chown(top, account.uid, account.gid, follow_symlinks=False)
        if top.is_dir() and not top.is_symlink():
            for root, dirs, files in os.walk(top):
                for name in dirs + files:
                    os.chown(Path(root, name), account.uid, account.gid, follow_symlinks=False)


def make_traversable(path: Path) -> None:
    """Let other users reach `path` (pytest's tmp dirs are 0700) by opening its parents' x bit."""
    for parent in [path, *path.parents]:
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod((mode & 0o7777) | 0o011)
