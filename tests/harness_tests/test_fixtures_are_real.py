"""Each fixture proves it is the real thing."""

from __future__ import annotations

import hashlib
import os
import re
import smtplib
import subprocess
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from devtools.harness.account import MirrorAccount, give_to
from devtools.harness.binaries import MissingBinary, require
from devtools.harness.cvd import (
    HEADER_SIZE,
    build_cvd,
    corrupt_body,
    read_header,
    release_time,
    write_cvd,
)
from devtools.harness.nginx import DEFAULT_BODY, Nginx
from devtools.harness.rsyncd import RsyncDaemon
from devtools.harness.smtp import SmtpSink
from devtools.harness.sshd import Sshd, forced_command_line
from devtools.harness.sshkeys import KeyPair, generate_keypair


def _rsync_pull(
    daemon: RsyncDaemon, dest: Path, password: str | None
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"]}
    if password is not None:
        env["RSYNC_PASSWORD"] = password
    return subprocess.run(
        [
            require("rsync"),
            "-rt",
            "--contimeout=5",
            "--timeout=10",
            "--",
            f"rsync://{daemon.user}@{daemon.host}:{daemon.port}/{daemon.module}/",
            f"{dest}/",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def test_rsyncd_serves_with_password_and_refuses_without(
    rsync_pair: tuple[RsyncDaemon, RsyncDaemon], tmp_path: Path, source_tree: Path
) -> None:
    r1, r2 = rsync_pair
    assert r1.port != r2.port
    ok = _rsync_pull(r1, tmp_path / "pulled", r1.password)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "pulled" / "daily.cvd").read_bytes() == (
        source_tree / "daily.cvd"
    ).read_bytes()

    wrong = _rsync_pull(r2, tmp_path / "wrong", "not-the-password")
    assert wrong.returncode == 5
    assert "auth failed" in wrong.stderr
    assert not (tmp_path / "wrong" / "daily.cvd").exists()


def test_sshd_runs_only_the_forced_command(
    sshd_factory: Callable[..., Sshd], keypair: KeyPair, tmp_path: Path
) -> None:
    forced = forced_command_line(keypair.public_line, "/bin/echo forced-output")
    server = sshd_factory(authorized_keys=[forced])
    argv = server.ssh_argv(keypair.private, tmp_path / "known_hosts", "cat /etc/passwd; id")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr + server.log_text()
    assert out.stdout == "forced-output\n"

    # a key that is not in authorized_keys is refused
    other = generate_keypair(tmp_path / "other_key")
    argv[argv.index(str(keypair.private))] = str(other.private)
    denied = subprocess.run(
        argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
    )
    assert denied.returncode == 255
    assert "Permission denied" in denied.stderr


def test_sshd_instances_are_independent(
    sshd_factory: Callable[..., Sshd], keypair: KeyPair
) -> None:
    a = sshd_factory(authorized_keys=[forced_command_line(keypair.public_line, "/bin/true")])
    b = sshd_factory(authorized_keys=[forced_command_line(keypair.public_line, "/bin/true")])
    assert a.port != b.port
    assert a.host_key_line != b.host_key_line


def _get(url: str, host: str) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Host": host, "User-Agent": "ClamAV-MirrorCheck"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""


def test_nginx_answers_by_host_header(
    nginx_factory: Callable[..., Nginx], tmp_path: Path, account: MirrorAccount
) -> None:
    docroot = tmp_path / "docroot"
    docroot.mkdir()
    (docroot / "local_test").write_text("Success")
    give_to(account, docroot)
    web = nginx_factory(docroot)
    assert _get(f"{web.base_url}/local_test", "db.test.clamav.net") == (200, "Success")
    assert _get(f"{web.base_url}/local_test", "database.clamav.net") == (200, "Success")
    assert _get(f"{web.base_url}/local_test", "unrelated.example") == (200, DEFAULT_BODY)


def test_smtp_sink_receives_mail(smtp_sink: SmtpSink) -> None:
    msg = EmailMessage()
    msg["From"] = "syncd@example.org"
    msg["To"] = "admin@example.org"
    msg["Subject"] = "mirror lagging"
    msg.set_content("daily.cvd is two days old")
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
        client.send_message(msg)
    assert len(smtp_sink.messages) == 1
    got = smtp_sink.messages[0]
    assert got["Subject"] == "mirror lagging"
    assert "two days old" in got.get_content()
    assert smtp_sink.envelopes[0] == ("syncd@example.org", ["admin@example.org"])


def test_sigtool_reads_our_headers(tmp_path: Path) -> None:
    when = release_time() - timedelta(days=3, minutes=17)
    path = write_cvd(
        tmp_path, "daily", 28042, signatures=2_123_456, functionality=213, build_time=when
    )
    out = subprocess.run(
        [require("sigtool"), "--info", str(path)], capture_output=True, text=True, timeout=60
    )
    # sigtool also checks the digital signature, which only ClamAV's key can make: it fails
    # that part; every header field must still read back exactly as written.
    fields = dict(re.findall(r"^([A-Za-z0-9 ]+): (.*)$", out.stdout, re.MULTILINE))
    header = read_header(path)
    assert fields["Version"] == "28042"
    assert fields["Signatures"] == "2123456"
    assert fields["Functionality level"] == "213"
    assert fields["Builder"] == "pushsync"
    assert fields["MD5"] == header["md5"]
    assert fields["Build time"] == when.strftime("%d %b %Y %H:%M +0000")


def test_cvd_body_md5_and_corruption(tmp_path: Path) -> None:
    data = build_cvd("main", 62)
    assert len(data[:HEADER_SIZE]) == HEADER_SIZE
    assert data[:HEADER_SIZE].rstrip(b" ").count(b":") == 8
    path = tmp_path / "main.cvd"
    path.write_bytes(data)
    md5 = read_header(path)["md5"]
    assert hashlib.md5(data[HEADER_SIZE:]).hexdigest() == md5
    corrupt_body(path)
    assert hashlib.md5(path.read_bytes()[HEADER_SIZE:]).hexdigest() != md5


def test_missing_binary_names_the_package() -> None:
    with pytest.raises(MissingBinary, match="apt-get install"):
        require("definitely-not-installed-anywhere")


def test_mirror_account_runs_the_client_zipapp_through_sshd(
    sshd_factory: Callable[..., Sshd], keypair: KeyPair, tmp_path: Path, client_zipapp: Path
) -> None:
    from devtools.harness.client import client_command

    command = " ".join([*client_command(client_zipapp), "--version"])
    server = sshd_factory(authorized_keys=[forced_command_line(keypair.public_line, command)])
    argv = server.ssh_argv(keypair.private, tmp_path / "known_hosts")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr + server.log_text()
    from clientside import __version__

    assert out.stdout.strip() == __version__
