"""The zipapp a mirror downloads is a release artifact: one command builds it reproducibly
(sorted members dated SOURCE_DATE_EPOCH) and signs it; the signature verifies with the
allowed_signers mirrors already trust, and fails on a changed byte."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from devtools.harness.binaries import require
from devtools.harness.sshkeys import KeyPair, generate_keypair
from pushwire.keyfile import NAMESPACE
from tests.setup.keyfiles import PRINCIPAL

ROOT = Path(__file__).resolve().parent.parent.parent
EPOCH = "1700000000"  # a pinned build date, only written into the archive (noqa: date)


def build(out: Path, *args: str, epoch: str | None = EPOCH) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    if epoch is not None:
        env["SOURCE_DATE_EPOCH"] = epoch
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_zipapp.py"), str(out), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def verify(
    signer: KeyPair, pyz: Path, tmp: Path, namespace: str = NAMESPACE
) -> subprocess.CompletedProcess[bytes]:
    signers = tmp / "allowed_signers"
    bare = " ".join(signer.public_line.split()[:2])
    signers.write_text(
        f'{PRINCIPAL} namespaces="{NAMESPACE}" {bare}\n'
    )  # as syncd keys render writes it
    with pyz.open("rb") as data:
        return subprocess.run(
            [
                require("ssh-keygen"),
                "-Y",
                "verify",
                "-f",
                str(signers),
                "-I",
                PRINCIPAL,
                "-n",
                namespace,
                "-s",
                f"{pyz}.sig",
            ],
            stdin=data,
            capture_output=True,
            timeout=60,
            check=False,
        )


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return generate_keypair(tmp_path_factory.mktemp("signer") / "db-team", "db-team")


def test_two_signed_builds_are_byte_identical_and_verify(tmp_path: Path, signer: KeyPair) -> None:
    a, b = tmp_path / "a" / "clam-clientsync.pyz", tmp_path / "b" / "clam-clientsync.pyz"
    for out in (a, b):
        done = build(out, "--sign-key", str(signer.private))
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == [str(out), f"{out}.sig"]
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:
        names = zf.namelist()
        assert names[0] == "__main__.py" and names[1:] == sorted(names[1:])
        assert {i.date_time for i in zf.infolist()} == {(2023, 11, 14, 22, 13, 20)}
    ok = verify(signer, a, tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert f'Good "{NAMESPACE}" signature for {PRINCIPAL}' in ok.stdout.decode()
    # the signature is over these bytes: one changed byte fails, and so does another namespace
    tampered = tmp_path / "c" / "clam-clientsync.pyz"
    tampered.parent.mkdir()
    data = bytearray(a.read_bytes())
    data[-100] ^= 1
    tampered.write_bytes(bytes(data))
    (tampered.parent / "clam-clientsync.pyz.sig").write_bytes(
        (a.parent / "clam-clientsync.pyz.sig").read_bytes()
    )
    assert verify(signer, tampered, tmp_path).returncode != 0
    assert verify(signer, a, tmp_path, namespace="file").returncode != 0


def test_the_date_is_source_date_epoch(tmp_path: Path) -> None:
    first = build(tmp_path / "x.pyz", epoch="1000000000")  # (noqa: date)
    later = build(tmp_path / "y.pyz", epoch="1000000002")  # (noqa: date)
    unset = build(tmp_path / "z.pyz", epoch=None)
    assert first.returncode == later.returncode == unset.returncode == 0
    assert (tmp_path / "x.pyz").read_bytes() != (tmp_path / "y.pyz").read_bytes()
    with zipfile.ZipFile(tmp_path / "z.pyz") as zf:
        assert {i.date_time for i in zf.infolist()} == {(2020, 1, 1, 0, 0, 0)}
    old = build(tmp_path / "o.pyz", epoch="0")  # before zip's 1980: clamped
    assert old.returncode == 0, old.stderr
    with zipfile.ZipFile(tmp_path / "o.pyz") as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


@pytest.mark.parametrize("epoch", ["yesterday", "-5", "1e9", "$(touch /tmp/x)"])
def test_a_bad_source_date_epoch_is_one_line(tmp_path: Path, epoch: str) -> None:
    done = build(tmp_path / "x.pyz", epoch=epoch)
    assert done.returncode != 0
    assert done.stderr.strip().startswith("build_zipapp: SOURCE_DATE_EPOCH=")
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.pyz").exists()


def test_a_missing_sign_key_is_one_line(tmp_path: Path) -> None:
    done = build(tmp_path / "x.pyz", "--sign-key", str(tmp_path / "no-such-key"))
    assert done.returncode == 1
    assert done.stderr.startswith("build_zipapp: signing x.pyz failed:")
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.pyz.sig").exists()
