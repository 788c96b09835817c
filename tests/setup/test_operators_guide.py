"""The operators' guide followed end to end on a freshly created Unix account: the "Install"
commands run exactly as docs/operators-guide.md writes them (verify the zipapp's signature,
install it, setup with the signed key files, create TO, doctor), then a push through a real sshd
with a pusher key publishes the release into TO. Root only: it creates and removes an account
(CI runs as root)."""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.harness.account import MirrorAccount, give_to
from devtools.harness.rsyncd import RsyncDaemon
from devtools.harness.sshd import Sshd
from pushwire.keyfile import ALLOWED_SIGNERS, NOSHELL
from tests.setup.keyfiles import SignedKeys, make_signed_keys

ROOT = Path(__file__).resolve().parent.parent.parent
GUIDE = ROOT / "docs" / "operators-guide.md"
DOCTOR = "~/bin/clam-clientsync --doctor"


def guide_commands() -> list[str]:
    """The shell lines of the guide's Install section, in order."""
    text = GUIDE.read_text()
    section = text.split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    block: list[str] = []
    for line in section.splitlines():
        if line.startswith("    ") and line.strip():
            block.append(line.strip())
        elif block:
            break
    assert block, "the guide's Install section has no commands"
    return block


@pytest.fixture
def fresh_account() -> Iterator[MirrorAccount]:
    assert os.geteuid() == 0, "this test creates a Unix account: run it as root (CI does)"
    name = f"pushsync-guide-{secrets.token_hex(3)}"
    home = Path("/var/lib") / name
    subprocess.run(
        ["useradd", "--system", "--create-home", "--home-dir", str(home), "--shell", "/bin/sh",
         "--user-group", name],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    try:
        subprocess.run(["usermod", "-p", "*", name], check=True, capture_output=True, timeout=60)
        home.chmod(0o755)
        entry = pwd.getpwnam(name)
        yield MirrorAccount(name, entry.pw_uid, entry.pw_gid, home, entry.pw_shell)
    finally:
        subprocess.run(["userdel", "--remove", name], capture_output=True, timeout=60, check=False)
        shutil.rmtree(home, ignore_errors=True)


def as_account(
    account: MirrorAccount, script: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `script` with /bin/sh as `account`, from its home, as a login would."""
    return subprocess.run(
        [
            shutil.which("runuser") or "runuser",
            "-u",
            account.name,
            "--",
            "/bin/sh",
            "-e",
            "-c",
            script,
        ],
        env={
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LC_ALL": "C.UTF-8",
            "HOME": str(account.home),
        },
        cwd=account.home,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def download(account: MirrorAccount, keys: SignedKeys, tmp_path: Path) -> None:
    """What the admin downloads into ~/pushsync-keys: the signed zipapp and the key files."""
    target = account.home / "pushsync-keys"
    target.mkdir(mode=0o755)
    built = tmp_path / "release" / "clam-clientsync.pyz"
    argv = [sys.executable, str(ROOT / "scripts" / "build_zipapp.py"), str(built)]
    done = subprocess.run(
        [*argv, "--sign-key", str(keys.signer.private)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for path in (built, built.with_name(built.name + ".sig")):
        shutil.copyfile(path, target / path.name)
    for name in (NOSHELL, NOSHELL + ".sig", ALLOWED_SIGNERS):
        shutil.copyfile(keys.directory / name, target / name)
    give_to(account, target)


def test_the_guide_on_a_fresh_account(
    tmp_path: Path, fresh_account: MirrorAccount, rsync_pair: tuple[RsyncDaemon, RsyncDaemon]
) -> None:
    account = fresh_account
    home = account.home
    keys = make_signed_keys(tmp_path / "team", client="/home/clamavdb/bin/clam-clientsync")
    download(account, keys, tmp_path)
    commands = guide_commands()
    assert DOCTOR in commands and any("install -d" in c for c in commands), commands
    before = commands[: commands.index(DOCTOR)]

    done = as_account(account, "\n".join(before))
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'Good "pushsync-keys" signature for db-team@clamav.net' in done.stdout + done.stderr
    client = home / "bin" / "clam-clientsync"
    assert client.is_file() and (home / "public_html").is_dir()
    assert (
        f'command="{client} rsync1.clamav.net"' in (home / ".ssh" / "authorized_keys").read_text()
    )

    # "Before doctor, fill in ~/etc/clam-clientsync.conf": TO=, RSYNC_USER=, RSYNC_PASSWORD=
    # (and SOURCES=, since the test's rsync daemons are on loopback ports)
    r1, r2 = rsync_pair
    conf = home / "etc" / "clam-clientsync.conf"
    with conf.open("a") as fh:
        fh.write(
            f"TO={home}/public_html\nRSYNC_USER={r1.user}\nRSYNC_PASSWORD={r1.password}\n"
            f'SOURCES="rsync1.clamav.net={r1.url} rsync2.clamav.net={r2.url}"\n'
        )
    doctor = as_account(account, "\n".join(commands[commands.index(DOCTOR) :]))
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert doctor.stdout.strip().endswith("all checks passed"), doctor.stdout

    # a push, as the team's publisher makes it: ssh with the rsync2 key, the forced command runs
    installed = [
        ln
        for ln in (home / ".ssh" / "authorized_keys").read_text().splitlines()
        if ln and not ln.startswith("#")
    ]
    with Sshd(tmp_path / "sshd", authorized_keys=installed, account=account) as sshd:
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{sshd.port} {sshd.host_key_line}\n")
        push = subprocess.run(
            sshd.ssh_argv(keys.pushers[1].private, known, "sync"),
            capture_output=True, text=True, timeout=300, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    assert push.returncode == 0, push.stdout + push.stderr
    report = json.loads(push.stdout.strip().splitlines()[-1])
    assert report["status"] == "ok" and report["source_requested"] == "rsync2.clamav.net", report
    assert (home / "public_html" / "daily.cvd").is_file()
