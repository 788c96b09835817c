"""The path a mirror really takes: sshd's forced command runs the zipapp as the mirror account."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from devtools.harness.account import MirrorAccount, give_to, make_traversable
from devtools.harness.client import client_command
from devtools.harness.rsyncd import RsyncDaemon
from devtools.harness.sshd import Sshd, forced_command_line
from devtools.harness.sshkeys import KeyPair
from tests.client.conftest import R1, R2


def _ssh(
    sshd: Sshd, key: KeyPair, account: MirrorAccount, known: Path, command: str
) -> subprocess.CompletedProcess[str]:
    argv = [
        "ssh", "-F", "/dev/null", "-i", str(key.private), "-p", str(sshd.port),
        "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
        f"{account.name}@127.0.0.1", command,
    ]  # fmt: skip
    for _ in range(3):
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        # the shared test account is re-provisioned (usermod) by other test sessions on this
        # machine; a login refused in that instant is not what these tests are about
        if not (done.returncode == 255 and "Permission denied" in done.stderr):
            break
        time.sleep(0.5)
    return done


@pytest.fixture
def setup(
    tmp_path: Path,
    rsync_pair: tuple[RsyncDaemon, RsyncDaemon],
    account: MirrorAccount,
    keypair: KeyPair,
    client_zipapp: Path,
):  # type: ignore[no-untyped-def]
    r1, r2 = rsync_pair
    base = tmp_path / "clamavdb"
    to, etc, var = base / "public_html", base / "etc", base / "var"
    for d in (to, etc, var):
        d.mkdir(parents=True)
    (to / "local_test").write_text("Success\n")
    conf = etc / "clam-clientsync.conf"
    conf.write_text(
        f"TO={to}\nRSYNC_USER={r1.user}\nRSYNC_PASSWORD='{r1.password}'\nMODULE=clamavdb\n"
        f'EXCLUDE="--exclude local_*"\nSTATE_DIR={var}\n'
        f'SOURCES="{R1}={r1.url} {R2}={r2.url}"\n'
    )
    conf.chmod(0o600)
    give_to(account, base)
    make_traversable(base)
    return to, conf, var


def _start(
    sshd_factory: Callable[..., Sshd],
    keypair: KeyPair,
    python: list[str],
    conf: Path,
    tmp_path: Path,
) -> tuple[Sshd, Path]:
    lines = [
        forced_command_line(keypair.public_line, " ".join([*python, "--config", str(conf), src]))
        for src in (R1, R2)
    ]
    sshd = sshd_factory(authorized_keys=lines[:1])
    known = tmp_path / f"known_hosts_{sshd.port}"
    known.write_text(f"[127.0.0.1]:{sshd.port} {sshd.host_key_line}\n")
    return sshd, known


def test_forced_command_sync_through_real_sshd(
    setup,
    tmp_path: Path,
    source_tree: Path,
    account: MirrorAccount,
    keypair: KeyPair,
    sshd_factory: Callable[..., Sshd],
    client_zipapp: Path,
) -> None:
    to, conf, _var = setup
    sshd, known = _start(sshd_factory, keypair, client_command(client_zipapp), conf, tmp_path)
    res = _ssh(sshd, keypair, account, known, "sync run-id=ssh-1 expect-daily=28033")
    assert res.returncode == 0, res.stderr + sshd.log_text()[-2000:]
    rep = json.loads(res.stdout)
    assert rep["status"] == "ok" and rep["run_id"] == "ssh-1"
    assert rep["databases"]["daily"]["version"] == 28033
    assert (to / "daily.cvd").stat().st_uid == account.uid
    assert (to / "local_test").read_text() == "Success\n"
    assert "s3cret-rsync" not in res.stdout + res.stderr

    # hostile: rejected through ssh too, and nothing runs
    victim = Path(f"/tmp/clam-clientsync-ssh-{uuid.uuid4().hex}")
    for command in (f"sync; touch {victim}", f"$(touch {victim})", "internal-sftp"):
        bad = _ssh(sshd, keypair, account, known, command)
        assert bad.returncode == 64, bad.stderr
        assert json.loads(bad.stdout)["status"] == "rejected"
    sftp = subprocess.run(
        [
            "sftp",
            "-F",
            "/dev/null",
            "-i",
            str(keypair.private),
            "-P",
            str(sshd.port),
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={known}",
            f"{account.name}@127.0.0.1",
        ],
        input="ls\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert sftp.returncode != 0
    assert not victim.exists()

    # status through ssh prints the last report
    status = _ssh(sshd, keypair, account, known, "status")
    assert json.loads(status.stdout)["run_id"] == "ssh-1"
