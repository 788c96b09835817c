"""``clam-clientsync setup`` end to end, on fresh temp homes, with real signatures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools.harness.account import MirrorAccount, give_to
from devtools.harness.client import system_python
from devtools.harness.rsyncd import RsyncDaemon
from devtools.harness.sshd import Sshd
from devtools.harness.sshkeys import generate_keypair
from tests.setup.keyfiles import PRINCIPAL, SignedKeys, make_signed_keys, sign

ROOT = Path(__file__).resolve().parent.parent.parent
CMD = 'command="/home/clamavdb/bin/clam-clientsync rsync1.clamav.net"'
MARKER = "# pushsync: the lines below are managed by 'clam-clientsync setup'"
FOREIGN = (
    b"# the admin's own notes\n"
    b'from="10.0.0.1",no-pty ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2zX9Fj5h3u+QmR admin@laptop\n'
    b"\n"
    b"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 backup@host\r\n"
    b"garbage that is not a key \xff\xfe\n"
)
LEGACY = (
    b"no-port-forwarding,no-X11-forwarding,no-agent-forwarding,no-pty,"
    b'command="bash ~/bin/clam-clientsync rsync1.clamav.net &" '
    b"ssh-rsa AAAAB3NzaOLD clamavdb@morgana\n"
)


@dataclass
class Run:
    rc: int
    out: str
    err: str


def run(home: Path, *args: str, timeout: float = 60) -> Run:
    """Run setup as the current user (root in CI) from the source tree."""
    done = subprocess.run(
        [sys.executable, "-m", "clientside", "setup", "--home", str(home), *args],
        cwd=ROOT,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def run_as(account: MirrorAccount, argv: list[str], timeout: float = 60) -> Run:
    """Run `argv` as the mirror account (through runuser when we are root)."""
    prefix = (
        []
        if os.geteuid() != 0
        else [shutil.which("runuser") or "runuser", "-u", account.name, "--"]
    )
    done = subprocess.run(
        [*prefix, *argv],
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd="/",
    )
    return Run(done.returncode, done.stdout, done.stderr)


def fresh_home(tmp_path: Path, client_zipapp: Path | None = None) -> Path:
    home = tmp_path / "home" / "clamavdb"
    home.mkdir(parents=True)
    home.chmod(0o755)
    if client_zipapp is not None:
        (home / "bin").mkdir(mode=0o755)
        shutil.copyfile(client_zipapp, home / "bin" / "clam-clientsync")
        (home / "bin" / "clam-clientsync").chmod(0o755)
    return home


def mode(path: Path) -> int:
    return path.lstat().st_mode & 0o7777


@pytest.fixture
def keys(tmp_path: Path) -> SignedKeys:
    return make_signed_keys(tmp_path / "signed")


def test_fresh_home_then_nothing_to_change(
    tmp_path: Path, keys: SignedKeys, client_zipapp: Path
) -> None:
    home = fresh_home(tmp_path, client_zipapp)
    home.chmod(0o775)  # group-writable: sshd's StrictModes would refuse it
    first = run(home, "--keys-dir", str(keys.directory))
    assert first.rc == 0, first.err
    ak = home / ".ssh" / "authorized_keys"
    assert mode(home) == 0o755 and mode(home / ".ssh") == 0o700 and mode(ak) == 0o600
    assert mode(home / "etc" / "clam-clientsync.conf") == 0o600
    assert mode(home / "bin" / "clam-clientsync") == 0o755
    assert (home / "var" / "clam-clientsync").is_dir()
    config = (home / "etc" / "clam-clientsync.conf").read_text()
    assert all(ln.startswith("#") for ln in config.splitlines() if ln.strip()), config
    for key in ("TO=", "RSYNC_USER=", "RSYNC_PASSWORD=", "SOURCES=", "STATE_DIR="):
        assert f"#{key}" in config
    client = home / "bin" / "clam-clientsync"
    text = ak.read_text()
    assert text.startswith(MARKER + "\n")
    assert f'command="{client} rsync1.clamav.net"' in text
    assert f'command="{client} rsync2.clamav.net"' in text
    assert text.count("restrict,from=") == 2
    assert "chmod " + str(home) + " (mode 755, was 775)" in first.out
    assert f"/home/clamavdb/bin/clam-clientsync -> {client}" in first.out
    before = {
        p: (p.stat().st_mtime_ns, p.read_bytes())
        for p in (ak, home / "etc" / "clam-clientsync.conf")
    }
    second = run(home, "--keys-dir", str(keys.directory))
    assert second.rc == 0, second.err
    assert second.out.strip().endswith("nothing to change"), second.out
    assert "pusher keys already installed" in second.out
    assert before == {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in before}


def test_dry_run_changes_nothing(tmp_path: Path, keys: SignedKeys, client_zipapp: Path) -> None:
    home = fresh_home(tmp_path, client_zipapp)
    res = run(home, "--dry-run", "--keys-dir", str(keys.directory))
    assert res.rc == 0, res.err
    assert "would create" in res.out and "would write" in res.out
    assert sorted(p.name for p in home.iterdir()) == ["bin"]


def test_setup_option_spelling_and_explicit_files(
    tmp_path: Path, keys: SignedKeys, client_zipapp: Path
) -> None:
    home = fresh_home(tmp_path, client_zipapp)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "clientside",
            "setup",
            "--home",
            str(home),
            "--keys",
            str(keys.noshell),
            "--signers",
            str(keys.signers),
            "--principal",
            PRINCIPAL,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (home / ".ssh" / "authorized_keys").read_text().count("restrict,") == 2


def test_the_old_hidden_setup_switch_is_a_usage_error(
    tmp_path: Path, keys: SignedKeys, client_zipapp: Path
) -> None:
    home = fresh_home(tmp_path, client_zipapp)
    done = subprocess.run(
        [sys.executable, "-m", "clientside", "--setup", "--home", str(home)],
        cwd=ROOT,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 64, done.stderr
    assert json.loads(done.stdout)["error"]["kind"] == "usage"
    assert sorted(p.name for p in home.iterdir()) == ["bin"]


def test_foreign_lines_survive_byte_for_byte(
    tmp_path: Path, keys: SignedKeys, client_zipapp: Path
) -> None:
    home = fresh_home(tmp_path, client_zipapp)
    ssh = home / ".ssh"
    ssh.mkdir(mode=0o700)
    ak = ssh / "authorized_keys"
    ak.write_bytes(FOREIGN + LEGACY + b"ssh-ed25519 AAAAC3NzaLAST no-newline")
    ak.chmod(0o644)
    res = run(home, "--keys-dir", str(keys.directory))
    assert res.rc == 0, res.err
    new = ak.read_bytes()
    assert new.startswith(FOREIGN + b"ssh-ed25519 AAAAC3NzaLAST no-newline\n" + MARKER.encode())
    assert b"AAAAB3NzaOLD" not in new  # the legacy pusher line is ours: replaced
    assert "5 other line(s) kept, 1 replaced" in res.out, res.out
    assert mode(ak) == 0o600
    again = run(home, "--keys-dir", str(keys.directory))
    assert again.out.strip().endswith("nothing to change") and ak.read_bytes() == new


def test_existing_config_is_never_overwritten(tmp_path: Path, client_zipapp: Path) -> None:
    home = fresh_home(tmp_path, client_zipapp)
    (home / "etc").mkdir()
    conf = home / "etc" / "clam-clientsync.conf"
    conf.write_text("TO=/srv/clamav\nRSYNC_PASSWORD=x\n")
    conf.chmod(0o644)
    res = run(home)
    assert res.rc == 0, res.err
    assert conf.read_text() == "TO=/srv/clamav\nRSYNC_PASSWORD=x\n"
    assert mode(conf) == 0o600
    assert "exists, not overwritten" in res.out
    assert "no key file given" in res.out


def _refused(res: Run, home: Path, words: str) -> None:
    assert res.rc == 78, (res.out, res.err)
    assert words in res.err, res.err
    assert (
        not (home / ".ssh" / "authorized_keys").exists()
        or (home / ".ssh" / "authorized_keys").is_symlink()
    )


@pytest.mark.parametrize(
    "tamper",
    [
        "swap-key",  # an attacker's key in place of a pusher's
        "widen-command",  # the forced command changed after signing
        "append-line",
    ],
)
def test_tampered_key_file_is_refused(
    tmp_path: Path, keys: SignedKeys, client_zipapp: Path, tamper: str
) -> None:
    home = fresh_home(tmp_path, client_zipapp)
    text = keys.noshell.read_text()
    if tamper == "swap-key":
        evil = generate_keypair(tmp_path / "evil" / "key").public_line.split()[1]
        text = text.replace(keys.pushers[0].public_line.split()[1], evil)
    elif tamper == "widen-command":
        text = text.replace("rsync1.clamav.net", "rsync1.clamav.net; sh")
    else:
        text += "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2zX9Fj5h3u+QmR evil\n"
    keys.noshell.write_text(text)
    _refused(run(home, "--keys-dir", str(keys.directory)), home, "does not verify")
    assert not (home / ".ssh").exists()


def test_signature_by_someone_else_or_wrong_principal_is_refused(
    tmp_path: Path, keys: SignedKeys, client_zipapp: Path
) -> None:
    home = fresh_home(tmp_path, client_zipapp)
    res = run(home, "--keys-dir", str(keys.directory), "--principal", "someone@example.org")
    _refused(res, home, "does not verify")
    sign(generate_keypair(tmp_path / "evil" / "signer"), keys.noshell)  # re-signed by a stranger
    _refused(run(home, "--keys-dir", str(keys.directory)), home, "does not verify")


def test_missing_signature_is_refused(
    tmp_path: Path, keys: SignedKeys, client_zipapp: Path
) -> None:
    home = fresh_home(tmp_path, client_zipapp)
    (keys.directory / "authorized_keys_noshell.sig").unlink()
    _refused(run(home, "--keys-dir", str(keys.directory)), home, "not found")


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ('from="127.0.0.1",no-pty {key} shell', "no forced command"),
        (
            'from="127.0.0.1",' + CMD + " {key} x",
            "not restricted",
        ),
        ('restrict,command="/bin/sh -c id" {key} x', "forced command"),
        (
            "restrict," + CMD + ',permitopen="h:1" {key} x',
            "permitopen",
        ),
        (
            "restrict,port-forwarding," + CMD + " {key} x",
            "port-forwarding",
        ),
    ],
)
def test_signed_file_with_unrestricted_lines_is_refused(
    tmp_path: Path, keys: SignedKeys, client_zipapp: Path, line: str, why: str
) -> None:
    """Even a valid signature does not make a shell line installable by setup."""
    home = fresh_home(tmp_path, client_zipapp)
    key = " ".join(keys.pushers[0].public_line.split()[:2])
    keys.noshell.write_text(keys.noshell.read_text() + line.format(key=key) + "\n")
    sign(keys.signer, keys.noshell)
    _refused(run(home, "--keys-dir", str(keys.directory)), home, why)
    assert not (home / ".ssh").exists()


def test_the_shell_key_file_is_refused(
    tmp_path: Path, keys: SignedKeys, client_zipapp: Path
) -> None:
    home = fresh_home(tmp_path, client_zipapp)
    shell = keys.directory / "authorized_keys_shell"
    sign(keys.signer, shell)
    res = run(home, "--keys", str(shell), "--signers", str(keys.signers))
    _refused(res, home, "no forced command")


def test_symlinked_authorized_keys_is_not_followed(
    tmp_path: Path, keys: SignedKeys, client_zipapp: Path
) -> None:
    home = fresh_home(tmp_path, client_zipapp)
    (home / ".ssh").mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"precious\n")
    (home / ".ssh" / "authorized_keys").symlink_to(elsewhere)
    res = run(home, "--keys-dir", str(keys.directory))
    _refused(res, home, "is a symbolic link: not followed")
    assert elsewhere.read_bytes() == b"precious\n"
    assert (home / ".ssh" / "authorized_keys").is_symlink()
    assert not (home / "etc").exists()  # refused before any change


def test_symlinked_ssh_dir_is_not_followed(
    tmp_path: Path, keys: SignedKeys, client_zipapp: Path
) -> None:
    home = fresh_home(tmp_path, client_zipapp)
    other = tmp_path / "other-ssh"
    other.mkdir()
    (home / ".ssh").symlink_to(other)
    _refused(run(home, "--keys-dir", str(keys.directory)), home, "is a symbolic link")
    assert list(other.iterdir()) == []


def test_missing_client_refuses_to_install_keys(tmp_path: Path, keys: SignedKeys) -> None:
    home = fresh_home(tmp_path)
    res = run(home, "--keys-dir", str(keys.directory))
    _refused(res, home, "does not exist")


def test_files_of_another_user_are_refused(
    tmp_path: Path, keys: SignedKeys, client_zipapp: Path, account: MirrorAccount
) -> None:
    """The mirror account runs setup on a home where root left a .ssh: refused, not chmod'ed.
    (Not root: a root-owned directory stands for the home, which is refused the same way.)"""
    if os.geteuid() != 0:
        res = run(Path("/usr"), "--dry-run")
        assert res.rc == 78 and "belongs to uid 0" in res.err, res.err
        return
    home = fresh_home(tmp_path, client_zipapp)
    give_to(account, home)
    (home / ".ssh").mkdir(mode=0o755)  # root's
    res = run_as(
        account,
        [
            system_python(),
            "-I",
            str(home / "bin" / "clam-clientsync"),
            "setup",
            "--home",
            str(home),
            "--keys-dir",
            str(keys.directory),
        ],
    )
    assert res.rc == 78, (res.out, res.err)
    assert "belongs to uid 0" in res.err
    assert mode(home / ".ssh") == 0o755


def test_setup_as_the_mirror_account_then_doctor_passes_and_the_forced_command_runs(
    tmp_path: Path,
    keys: SignedKeys,
    client_zipapp: Path,
    account: MirrorAccount,
    rsync_pair: tuple[RsyncDaemon, RsyncDaemon],
) -> None:
    """The three commands of the guide, as the mirror account: install, setup, doctor."""
    home = fresh_home(tmp_path, client_zipapp)
    give_to(account, home)
    client = home / "bin" / "clam-clientsync"
    py = [system_python(), "-I", str(client)]
    res = run_as(account, [*py, "setup", "--home", str(home), "--keys-dir", str(keys.directory)])
    assert res.rc == 0, (res.out, res.err)
    # the admin fills in the config, as the template says
    r1, r2 = rsync_pair
    public = home / "public_html"
    public.mkdir(mode=0o755)
    give_to(account, public)
    conf = home / "etc" / "clam-clientsync.conf"
    conf.write_text(
        conf.read_text()
        + f"TO={public}\nRSYNC_USER={r1.user}\nRSYNC_PASSWORD={r1.password}\n"
        + f'SOURCES="rsync1.clamav.net={r1.url} rsync2.clamav.net={r2.url}"\n'
    )
    doctor = run_as(account, [*py, "--doctor", "--home", str(home)])
    assert doctor.rc == 0, doctor.out + doctor.err
    assert "all checks passed" in doctor.out
    assert f"source rsync2.clamav.net (127.0.0.1:{r2.port}) answers" in doctor.out
    assert f"runs {client}, which exists" in doctor.out
    again = run_as(account, [*py, "setup", "--home", str(home), "--keys-dir", str(keys.directory)])
    assert again.rc == 0 and again.out.strip().endswith("nothing to change"), again.out
    # what sshd would run for the rsync2 key: the installed line's forced command, by the shell
    line = next(
        ln for ln in (home / ".ssh" / "authorized_keys").read_text().splitlines() if "rsync2" in ln
    )
    command = line.split('command="', 1)[1].split('"', 1)[0]
    assert command == f"{client} rsync2.clamav.net"
    # (--home: the client finds its home with getpwuid, and the test account's is elsewhere)
    program, source = command.split(" ")
    pushed = run_as(account, ["/bin/sh", "-c", f"{program} --home {home} {source}"], timeout=120)
    assert pushed.rc == 0, pushed.out + pushed.err
    assert '"status": "ok"' in pushed.out or '"status":"ok"' in pushed.out, pushed.out
    assert (public / "daily.cvd").exists()


def test_doctor_flags_a_forced_command_of_a_missing_client_and_the_legacy_line(
    tmp_path: Path,
) -> None:
    home = fresh_home(tmp_path)
    (home / ".ssh").mkdir(mode=0o700)
    ak = home / ".ssh" / "authorized_keys"
    ak.write_bytes(LEGACY)
    ak.chmod(0o600)
    done = subprocess.run(
        [sys.executable, "-m", "clientside", "--doctor", "--home", str(home)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert f"FAIL  forced command of key clamavdb@morgana runs {home}/bin/clam-clientsync" in (
        done.stdout
    )
    assert "does not end in '&'" in done.stdout


def test_an_authorized_keys_too_large_to_read_whole_is_not_rewritten(
    tmp_path: Path, keys: SignedKeys, client_zipapp: Path
) -> None:
    home = fresh_home(tmp_path, client_zipapp)
    (home / ".ssh").mkdir(mode=0o700)
    ak = home / ".ssh" / "authorized_keys"
    ak.write_bytes(b"# padding\n" * (1 << 19))  # 5 MiB
    res = run(home, "--keys-dir", str(keys.directory))
    assert res.rc == 78 and "larger than" in res.err
    assert ak.stat().st_size == 10 << 19


def test_setup_runs_on_python_3_9(tmp_path: Path, keys: SignedKeys, client_zipapp: Path) -> None:
    """Mirror hosts may have Python 3.9: the zipapp's setup runs there (where it is installed)."""
    py39 = Path("/root/.pyenv/versions/3.9.18/bin/python3.9")
    home = fresh_home(tmp_path, client_zipapp)
    python = str(py39) if py39.exists() else system_python()
    argv = [python, "-I", str(home / "bin" / "clam-clientsync"), "setup", "--home", str(home)]
    first = subprocess.run(
        [*argv, "--keys-dir", str(keys.directory)], capture_output=True, text=True, timeout=60
    )
    assert first.returncode == 0, first.stderr
    again = subprocess.run(
        [*argv, "--keys-dir", str(keys.directory)], capture_output=True, text=True, timeout=60
    )
    assert again.stdout.strip().endswith("nothing to change"), again.stdout + again.stderr


def test_a_hard_linked_authorized_keys_is_replaced_not_written_through(
    tmp_path: Path, keys: SignedKeys, client_zipapp: Path
) -> None:
    home = fresh_home(tmp_path, client_zipapp)
    (home / ".ssh").mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"ssh-ed25519 AAAAC3NzaOTHER other\n")
    os.link(elsewhere, home / ".ssh" / "authorized_keys")
    res = run(home, "--keys-dir", str(keys.directory))
    assert res.rc == 0, res.err
    assert elsewhere.read_bytes() == b"ssh-ed25519 AAAAC3NzaOTHER other\n"
    assert (home / ".ssh" / "authorized_keys").stat().st_nlink == 1


def test_a_client_outside_the_home_owned_by_root(
    tmp_path: Path, keys: SignedKeys, client_zipapp: Path, account: MirrorAccount
) -> None:
    """Installed from a package by root: --client names it, setup leaves its mode and owner."""
    home = fresh_home(tmp_path)
    give_to(account, home)
    client = tmp_path / "opt" / "clam-clientsync"
    client.parent.mkdir()
    client.parent.chmod(0o755)
    shutil.copyfile(client_zipapp, client)
    client.chmod(0o755)
    argv = [system_python(), "-I", str(client), "setup", "--home", str(home), "--client"]
    res = run_as(account, [*argv, str(client), "--keys-dir", str(keys.directory)])
    assert res.rc == 0, (res.out, res.err)
    assert f'command="{client} rsync1.clamav.net"' in (home / ".ssh/authorized_keys").read_text()
    assert "outside the home, mode and owner left as they are" in res.out
    client.chmod(0o775)
    res = run_as(account, [*argv, str(client), "--keys-dir", str(keys.directory)])
    assert res.rc == 78 and "chmod 755" in res.err


def test_real_sshd_accepts_the_installed_lines_and_runs_the_installed_client(
    tmp_path: Path,
    keys: SignedKeys,
    client_zipapp: Path,
    account: MirrorAccount,
    sshd_factory: Callable[..., Sshd],
) -> None:
    """The lines setup wrote, served by a real sshd: each pusher key runs the installed client
    for its own source (what the client then finds in the test account's real home does not
    matter here: the report names the source it was started for)."""
    home = fresh_home(tmp_path, client_zipapp)
    assert run(home, "--keys-dir", str(keys.directory)).rc == 0
    installed = (home / ".ssh" / "authorized_keys").read_text().splitlines()
    sshd = sshd_factory(authorized_keys=[ln for ln in installed if not ln.startswith("#")])
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {sshd.host_key_line}\n")
    for pusher, source in zip(
        keys.pushers, ("rsync1.clamav.net", "rsync2.clamav.net"), strict=True
    ):
        done = _ssh(sshd, pusher.private, account, known, "status")
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report["report_version"] == 1 and report["source_requested"] == source, done
    stranger = generate_keypair(tmp_path / "stranger" / "key")
    assert _ssh(sshd, stranger.private, account, known, "status").returncode == 255


def _ssh(
    sshd: Sshd, key: Path, account: MirrorAccount, known: Path, command: str
) -> subprocess.CompletedProcess[str]:
    argv = [
        "ssh", "-F", "/dev/null", "-i", str(key), "-p", str(sshd.port),
        "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
        f"{account.name}@127.0.0.1", command,
    ]  # fmt: skip
    for _ in range(3):
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL
        )
        # the shared test account may be re-provisioned by another session in that instant
        if not (done.returncode == 255 and "Permission denied" in done.stderr):
            break
        time.sleep(0.5)
    return done
