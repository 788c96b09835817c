"""The operators' guide followed end to end on a freshly created Unix account: the account made
by the guide's "The account" commands (as root, the name and home replaced by the test's), the
"Install" commands run exactly as docs/operators-guide.md writes them (verify the zipapp's
signature, install it, setup with the signed key files, create TO, doctor) with the guide's
minimal config (TO, RSYNC_USER, RSYNC_PASSWORD: no SOURCES), then a push through a real sshd
with a pusher key publishes the release into TO, from rsync2 when rsync1 is down.

The names are the real ones: the client and doctor connect to ``rsync1.clamav.net`` and
``rsync2.clamav.net`` on port 873, resolved by the C library as on a mirror. Only where they
point is the test's: doctor and sshd (and so the forced command) run in a private mount
namespace (``unshare --mount``) in which ``/etc/hosts`` maps the two names to two loopback
addresses whose port 873 the test's rsync daemons serve, and ``/etc/nsswitch.conf`` says
``hosts: files``, so that a name left out of that file does not resolve at once. Neither the
machine's files nor its other processes see any of it; the config stays the guide's. Root only:
it creates and removes accounts, binds port 873 and mounts (CI runs as root)."""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from devtools.harness.account import MirrorAccount, give_to, make_traversable
from devtools.harness.client import build_client_zipapp, client_command
from devtools.harness.rsyncd import RsyncDaemon
from devtools.harness.sshd import Sshd, forced_command_line
from devtools.harness.sshkeys import generate_keypair
from pushwire.keyfile import ALLOWED_SIGNERS, NOSHELL
from tests.setup.keyfiles import SignedKeys, make_signed_keys

ROOT = Path(__file__).resolve().parent.parent.parent
GUIDE = ROOT / "docs" / "operators-guide.md"
DOCTOR = "~/bin/clam-clientsync --doctor"


def guide_blocks(heading: str) -> list[list[str]]:
    """The shell lines of each command block (indented lines) of the guide's section
    `heading`, block by block, in order."""
    text = GUIDE.read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks: list[list[str]] = [[]]
    for line in section.splitlines():
        if line.startswith("    ") and line.strip():
            blocks[-1].append(line.strip())
        elif line.strip() and blocks[-1]:
            blocks.append([])
    blocks = [b for b in blocks if b]
    assert blocks, f"the guide's {heading} section has no commands"
    return blocks


def guide_block(heading: str) -> list[str]:
    """The shell lines of every command block of the guide's section `heading`, in order."""
    return [line for block in guide_blocks(heading) for line in block]


def guide_commands() -> list[str]:
    """The shell lines of the guide's Install section, in order."""
    return guide_block("Install")


def for_account(line: str, name: str, home: Path) -> str:
    """A guide's line for account `name` at `home` instead of clamavdb's."""
    return re.sub(r"\bclamavdb\b", name, line.replace("/home/clamavdb", str(home)))


def account_commands(name: str, home: Path) -> list[str]:
    """The guide's "The account" commands (run as root), for account `name` at `home`."""
    block = guide_blocks("The account")[0]
    assert block[0].startswith("useradd ") and "/home/clamavdb" in block[0], block
    return [for_account(line, name, home) for line in block]


def root_doctor_command(name: str, home: Path) -> str:
    """The guide's "The account" command that runs doctor as root for the account (the
    verdict on the lock), for account `name` at `home`."""
    (line,) = guide_blocks("The account")[1]
    assert line.startswith("runuser ") and line.endswith(" --doctor"), line
    return for_account(line, name, home)


def _new_account(*, unlock: bool = True) -> Iterator[MirrorAccount]:
    """An account made by the guide's commands (the unlock step left out unless `unlock`)."""
    assert os.geteuid() == 0, "this test creates a Unix account: run it as root (CI does)"
    name = f"pushsync-guide-{secrets.token_hex(3)}"
    home = Path("/var/lib") / name
    commands = account_commands(name, home)
    if not unlock:
        commands = [c for c in commands if not c.startswith("usermod -p")]
        assert len(commands) == 1, commands
    try:
        for command in commands:
            done = subprocess.run(
                ["/bin/sh", "-e", "-c", command], capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, command + ": " + done.stderr
        entry = pwd.getpwnam(name)
        yield MirrorAccount(name, entry.pw_uid, entry.pw_gid, home, entry.pw_shell)
    finally:
        subprocess.run(["userdel", "--remove", name], capture_output=True, timeout=60, check=False)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def fresh_account() -> Iterator[MirrorAccount]:
    yield from _new_account()


@pytest.fixture
def locked_account() -> Iterator[MirrorAccount]:
    """As ``useradd`` alone leaves it: locked."""
    yield from _new_account(unlock=False)


def loopback_address() -> str:
    """A loopback address of its own, for a daemon on a fixed port (873)."""
    a, b, c = (secrets.randbelow(200) + 20, secrets.randbelow(250) + 1, secrets.randbelow(250) + 1)
    return f"127.{a}.{b}.{c}"


def names_wrapper(directory: Path, hosts: dict[str, str]) -> list[str]:
    """argv that runs what follows it in a private mount namespace where the C library resolves
    exactly `hosts` (name -> address), from files only; it execs, keeping the pid."""
    directory.mkdir(parents=True, exist_ok=True)
    hosts_file = directory / "hosts"
    hosts_file.write_text("127.0.0.1 localhost\n" + "".join(f"{a} {n}\n" for n, a in hosts.items()))
    nss = directory / "nsswitch.conf"
    nss.write_text("passwd: files\ngroup: files\nshadow: files\nhosts: files\n")
    for path in (hosts_file, nss):
        path.chmod(0o644)
    make_traversable(directory)
    script = (
        f"mount --bind {shlex.quote(str(hosts_file))} /etc/hosts"
        f' && mount --bind {shlex.quote(str(nss))} /etc/nsswitch.conf && exec "$@"'
    )
    return [
        shutil.which("unshare") or "unshare", "--mount", "--propagation", "private",
        "/bin/sh", "-c", script, "names",
    ]  # fmt: skip


def as_account(
    account: MirrorAccount,
    script: str,
    timeout: float = 120,
    *,
    wrapper: list[str] | None = None,
    groups: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """Run `script` with /bin/sh as `account`, from its home, as a login would (inside
    `wrapper`, with the supplementary `groups`)."""
    extra = [arg for group in groups for arg in ("-G", group)]
    return subprocess.run(
        [
            *(wrapper or []),
            shutil.which("runuser") or "runuser",
            *extra,
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


@pytest.fixture
def named_sources(tmp_path: Path, source_tree: Path) -> Iterator[dict[str, RsyncDaemon]]:
    """rsync1.clamav.net and rsync2.clamav.net: a daemon each on port 873 of its own loopback
    address, serving the release (see the module for how the names reach them)."""
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(
                RsyncDaemon(
                    tmp_path / "rsyncd", source_tree, name=name, port=873, host=loopback_address()
                )
            )
            for name in ("rsync1.clamav.net", "rsync2.clamav.net")
        }


def test_the_guide_on_a_fresh_account(
    tmp_path: Path, fresh_account: MirrorAccount, named_sources: dict[str, RsyncDaemon]
) -> None:
    """Proven to fail on the code before the fallback and doctor's source checks (clientside at
    2c5569e): with no SOURCES, doctor passed listing no source at all, and the push tried only
    rsync1 (status failed, exit 75)."""
    account = fresh_account
    home = account.home
    keys = make_signed_keys(tmp_path / "team", client="/home/clamavdb/bin/clam-clientsync")
    download(account, keys, tmp_path)
    commands = guide_commands()
    assert DOCTOR in commands and any("install -d" in c for c in commands), commands
    assert commands[-1] == DOCTOR  # doctor comes last, once the config is filled in
    before = commands[: commands.index(DOCTOR)]
    doctor_lines = "\n".join(commands[commands.index(DOCTOR) :])

    done = as_account(account, "\n".join(before))
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'Good "pushsync-keys" signature for db-team@clamav.net' in done.stdout + done.stderr
    client = home / "bin" / "clam-clientsync"
    assert client.is_file() and (home / "public_html").is_dir()
    assert (
        f'command="{client} rsync1.clamav.net"' in (home / ".ssh" / "authorized_keys").read_text()
    )

    # "Before doctor, fill in ~/etc/clam-clientsync.conf": TO=, RSYNC_USER=, RSYNC_PASSWORD=,
    # and nothing else: the sources are the default ones
    r1, r2 = named_sources["rsync1.clamav.net"], named_sources["rsync2.clamav.net"]
    conf = home / "etc" / "clam-clientsync.conf"
    with conf.open("a") as fh:
        fh.write(f"TO={home}/public_html\nRSYNC_USER={r1.user}\nRSYNC_PASSWORD={r1.password}\n")
    assert "\nSOURCES" not in conf.read_text()
    wrapper = names_wrapper(
        tmp_path / "names", {"rsync1.clamav.net": r1.host, "rsync2.clamav.net": r2.host}
    )
    doctor = as_account(account, doctor_lines, wrapper=wrapper)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert doctor.stdout.strip().endswith("all checks passed"), doctor.stdout
    for name, daemon in named_sources.items():
        label = f"ok    source {name} ({name}:873)"
        assert f"{label}: the name {name} resolves ({daemon.host})" in doctor.stdout
        assert f"{label}: module clamavdb lists as RSYNC_USER" in doctor.stdout
    # the guide's account is '*' (key-only), which passwd -S reports as L, like a '!' one
    assert f"note  account {account.name}: passwd -S says L" in doctor.stdout
    # the guide's command as root for the account gives the verdict on the lock
    as_root = subprocess.run(
        [*wrapper, "/bin/sh", "-e", "-c", root_doctor_command(account.name, home)],
        env={"PATH": "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"},
        cwd="/", capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert as_root.returncode == 0, as_root.stdout + as_root.stderr
    assert f"ok    account {account.name} is not locked for sshd" in as_root.stdout
    assert as_root.stdout.strip().endswith("all checks passed"), as_root.stdout

    # rsync1 is down: doctor names it and the fix
    r1.stop()
    down = as_account(account, doctor_lines, wrapper=wrapper)
    assert down.returncode == 1, down.stdout
    assert "FAIL  source rsync1.clamav.net (rsync1.clamav.net:873) answers: " in down.stdout
    assert "fix: allow outgoing TCP to rsync1.clamav.net port 873" in down.stdout
    assert "ok    source rsync2.clamav.net (rsync2.clamav.net:873) answers" in down.stdout
    # rsync2's name does not resolve: doctor names the source and the fix
    unnamed = names_wrapper(tmp_path / "unnamed", {"rsync1.clamav.net": r1.host})
    lost = as_account(account, doctor_lines, wrapper=unnamed)
    assert lost.returncode == 1, lost.stdout
    assert (
        "FAIL  source rsync2.clamav.net (rsync2.clamav.net:873): the name rsync2.clamav.net"
        " resolves (it does not: "
    ) in lost.stdout
    assert "fix: make the host's resolver find it (getent hosts rsync2.clamav.net" in lost.stdout

    # a push, as the team's publisher makes it: ssh with the rsync1 key, the forced command
    # runs; rsync1 is down, so the sync falls back to rsync2
    installed = [
        ln
        for ln in (home / ".ssh" / "authorized_keys").read_text().splitlines()
        if ln and not ln.startswith("#")
    ]
    with Sshd(
        tmp_path / "sshd", authorized_keys=installed, account=account, wrapper=wrapper
    ) as sshd:
        push = subprocess.run(
            sshd.ssh_argv(keys.pushers[0].private, tmp_path / "known_hosts", "sync"),
            capture_output=True, text=True, timeout=300, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    assert push.returncode == 0, push.stdout + push.stderr
    report = json.loads(push.stdout.strip().splitlines()[-1])
    assert report["status"] == "ok", report
    assert report["source_requested"] == "rsync1.clamav.net", report
    assert report["source_used"] == "rsync2.clamav.net", report
    first, second = report["attempts"]
    assert first["source"] == "rsync1.clamav.net" and first["error"], report
    assert second["source"] == "rsync2.clamav.net" and second["error"] is None, report
    assert (home / "public_html" / "daily.cvd").is_file()


def test_doctor_names_a_locked_account_and_a_shell_that_cannot_run_the_forced_command(
    tmp_path: Path, locked_account: MirrorAccount
) -> None:
    """``useradd`` alone, without the guide's unlock step: sshd (UsePAM no) refuses the account,
    and doctor says so with the guide's fix when it can read /etc/shadow (here as a member of
    group shadow; as the account alone it can only print a note). Then a nologin shell. Proven
    to fail on the code before doctor's account checks (clientside at 2c5569e): doctor printed
    neither the lock nor the shell's problem."""
    account = locked_account
    name = account.name
    pusher = generate_keypair(tmp_path / "pusher", "pusher")
    line = forced_command_line(pusher.public_line, "echo pushed")
    pyz = build_client_zipapp(tmp_path / "client")
    doctor = shlex.join([*client_command(pyz), "--doctor"])

    with Sshd(tmp_path / "sshd", authorized_keys=[line], account=account) as sshd:
        refused = subprocess.run(
            sshd.ssh_argv(pusher.private, tmp_path / "known", "x"),
            capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert refused.returncode == 255 and "pushed" not in refused.stdout
        assert f"User {name} not allowed because account is locked" in sshd.log_text()

        seen = as_account(account, doctor, groups=("shadow",))  # as the guide's runuser -G
        assert seen.returncode == 1
        assert (
            f"FAIL  account {name} is not locked for sshd (its /etc/shadow password starts"
            f" with '!')\n      fix: as root: usermod -p '*' {name}"
        ) in seen.stdout, seen.stdout
        alone = as_account(account, doctor)
        assert f"note  account {name}: passwd -S says L, and only root can read" in alone.stdout
        assert f"account {name} is not locked" not in alone.stdout

        # the fix doctor names; then the push logs in
        subprocess.run(["usermod", "-p", "*", name], check=True, capture_output=True)
        fixed = as_account(account, doctor, groups=("shadow",))
        assert f"ok    account {name} is not locked for sshd" in fixed.stdout, fixed.stdout
        pushed = subprocess.run(
            sshd.ssh_argv(pusher.private, tmp_path / "known", "x"),
            capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert pushed.returncode == 0 and pushed.stdout.strip() == "pushed", pushed.stderr

    subprocess.run(["usermod", "-s", "/usr/sbin/nologin", name], check=True, capture_output=True)
    nologin = as_account(account, doctor)
    assert (
        "FAIL  login shell /usr/sbin/nologin can run the forced command (not nologin or false)\n"
        f"      fix: as root: usermod -s /bin/sh {name}"
    ) in nologin.stdout, nologin.stdout
    assert "FAIL  login shell /usr/sbin/nologin is in /etc/shells" in nologin.stdout
