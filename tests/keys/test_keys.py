"""Pusher keys: authorized_keys parsing, rendering, signing, and sshd honouring the result."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from typer import Typer
from typer.testing import CliRunner

from devtools.harness.binaries import require
from devtools.harness.sshd import Sshd
from devtools.harness.sshkeys import KeyPair, generate_keypair
from pushwire.authorized_keys import AuthorizedKey, AuthorizedKeysError, parse_line, render
from pushwire.keyfile import NOSHELL, SHELL
from syncd.cli.keys import app as keys_app
from syncd.keys.keyring import KeyringError, load_keyring, render_files

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq0gZ7wI0nR0b7eQq0k9v3bq2yqLx1m6y1c7J8Vb3aT"


@pytest.mark.parametrize(
    ("line", "options", "comment"),
    [
        (f"{KEY} me@host", (), "me@host"),
        (f"restrict {KEY}", (("restrict", None),), ""),
        (
            f'restrict,from="1.2.3.4,10.0.0.0/8",command="/bin/x a b" {KEY} c d',
            (("restrict", None), ("from", "1.2.3.4,10.0.0.0/8"), ("command", "/bin/x a b")),
            "c d",
        ),
        (f'command="say \\"hi\\"" {KEY}', (("command", 'say "hi"'),), ""),
    ],
)
def test_parse_and_render_round_trip(line: str, options: tuple, comment: str) -> None:
    key = parse_line(line)
    assert key is not None
    assert key.options == options
    assert key.comment == comment
    assert parse_line(render(key)) == key


@pytest.mark.parametrize(
    "line",
    [
        "ssh-ed25519",
        "ssh-dss AAAAB3 old",
        "command=/bin/sh ssh-ed25519 AAAA",
        'command="/bin/sh ssh-ed25519 AAAA',
        f'from="1.2.3.4"{KEY}',
        "ssh-ed25519 not!base64",
    ],
)
def test_bad_lines_are_errors(line: str) -> None:
    with pytest.raises(AuthorizedKeysError):
        parse_line(line)


def test_blank_and_comment_lines() -> None:
    assert parse_line("") is None
    assert parse_line("   # a note") is None


def _toml(
    client: str = "/home/clamavdb/bin/clam-clientsync",
    from_: str = '"127.0.0.1"',
    key: str = KEY,
    extra: str = "",
) -> str:
    return f"""
client = "{client}"
from = [{from_}]
{extra}
[[keys]]
source = "rsync1.clamav.net"
public_key = "{key}"

[[keys]]
source = "rsync2.clamav.net"
public_key = "{key}"

[[signers]]
principal = "db-team@clamav.net"
public_key = "{KEY}"
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_toml(client="bin/clam-clientsync"), "client: an absolute path"),
        (_toml(client="/bin/x; rm -rf ~"), "client: an absolute path"),
        (_toml(from_='"127.0.0.1; touch /tmp/x"'), "is not an IP address"),
        (_toml(from_='"*"'), "is not an IP address"),
        (_toml(key="ssh-ed25519 AAAA\\nx"), "keys.0.public_key"),
        (_toml(extra="shell = true"), "shell: Extra inputs are not permitted"),
        ("client = [", "not valid TOML"),
    ],
)
def test_keyring_errors_name_the_field(text: str, message: str) -> None:
    with pytest.raises(KeyringError, match=message.replace("(", r"\(")):
        load_keyring(text)


def test_rendering_is_deterministic_and_restricted() -> None:
    ring = load_keyring(_toml(from_='"127.0.0.1", "2001:db8::/64"'))
    first, second = (
        render_files(ring),
        render_files(load_keyring(_toml(from_='"127.0.0.1", "2001:db8::/64"'))),
    )
    assert first == second
    lines = [parse_line(ln) for ln in first[NOSHELL].splitlines()]
    keys = [k for k in lines if k is not None]
    assert [k.option("command") for k in keys] == [
        "/home/clamavdb/bin/clam-clientsync rsync1.clamav.net",
        "/home/clamavdb/bin/clam-clientsync rsync2.clamav.net",
    ]
    assert all(
        k.option("restrict") == "" and k.option("from") == "127.0.0.1,2001:db8::/64" for k in keys
    )
    shell = [k for k in map(parse_line, first[SHELL].splitlines()) if k is not None]
    assert all(k.option("command") is None and k.option("from") for k in shell)


def _ssh(server: Sshd, key: KeyPair, known: Path) -> subprocess.CompletedProcess[str]:
    argv = server.ssh_argv(key.private, known, "id")
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
    )


def test_sshd_honours_rendered_lines(
    sshd_factory: Callable[..., Sshd], keypair: KeyPair, tmp_path: Path
) -> None:
    text = _toml(client="/bin/echo", key=keypair.public_line)
    allowed = render_files(load_keyring(text))[NOSHELL].splitlines()
    server = sshd_factory(authorized_keys=allowed)
    known = tmp_path / "known_hosts"
    out = _ssh(server, keypair, known)
    assert out.returncode == 0, out.stderr + server.log_text()
    assert out.stdout == "rsync1.clamav.net\n"  # the forced command, not "id"

    # pushes only from the listed addresses
    server.set_authorized_keys(
        render_files(
            load_keyring(_toml(client="/bin/echo", key=keypair.public_line, from_='"192.0.2.7"'))
        )[NOSHELL].splitlines()
    )
    refused = _ssh(server, keypair, known)
    assert refused.returncode == 255


def test_sshd_reads_backslashes_and_quotes_as_rendered(
    sshd_factory: Callable[..., Sshd], keypair: KeyPair, tmp_path: Path
) -> None:
    """sshd unescapes only \\" inside command="...": a backslash reaches the command as is."""
    kind, blob, _ = keypair.public_line.split(" ", 2)
    command = "/bin/echo 'say \"hi\" /a\\b'"
    line = render(AuthorizedKey((("restrict", None), ("command", command)), kind, blob))
    assert 'command="/bin/echo \'say \\"hi\\" /a\\b\'"' in line
    out = _ssh(sshd_factory(authorized_keys=[line]), keypair, tmp_path / "known_hosts")
    assert out.returncode == 0, out.stderr
    assert out.stdout == 'say "hi" /a\\b\n'


def _cli(app: Typer, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_render_sign_verify_and_tamper(tmp_path: Path) -> None:
    signer = generate_keypair(tmp_path / "signer", "db-team")
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    (keys_dir / "pushers.toml").write_text(
        _toml().replace(
            f'principal = "db-team@clamav.net"\npublic_key = "{KEY}"',
            f'principal = "db-team@clamav.net"\npublic_key = "{signer.public_line}"',
        )
    )
    code, out = _cli(
        keys_app, "render", "--keys-dir", str(keys_dir), "--sign-key", str(signer.private)
    )
    assert code == 0, out
    assert (keys_dir / f"{NOSHELL}.sig").exists()
    code, out = _cli(keys_app, "verify", "--keys-dir", str(keys_dir))
    assert code == 0, out
    # rendering again changes nothing
    code, out = _cli(
        keys_app, "render", "--keys-dir", str(keys_dir), "--sign-key", str(signer.private)
    )
    assert "unchanged" in out

    # a line slipped into the signed file breaks verification
    with (keys_dir / NOSHELL).open("a") as f:
        f.write(f"{KEY} intruder\n")
    code, out = _cli(keys_app, "verify", "--keys-dir", str(keys_dir))
    assert code == 2
    assert "not what pushers.toml renders" in out

    # a signature by a key that is not a listed signer does not verify
    code, out = _cli(keys_app, "render", "--keys-dir", str(keys_dir))
    assert code == 0
    other = generate_keypair(tmp_path / "other", "stranger")
    (keys_dir / f"{NOSHELL}.sig").unlink()
    subprocess.run(
        [
            require("ssh-keygen"),
            "-q",
            "-Y",
            "sign",
            "-f",
            str(other.private),
            "-n",
            "pushsync-keys",
            str(keys_dir / NOSHELL),
        ],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    code, out = _cli(keys_app, "verify", "--keys-dir", str(keys_dir))
    assert code == 2
    assert "signature does not verify" in out


def test_missing_pushers_toml_is_a_clear_error(tmp_path: Path) -> None:
    code, out = _cli(keys_app, "render", "--keys-dir", str(tmp_path))
    assert code == 2
    assert "pushers.toml not found" in out


def test_the_example_keyring_in_the_repo_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "keys" / "pushers.example.toml"
    ring = load_keyring(example.read_text(), str(example))
    assert [k.source for k in ring.keys] == ["rsync1.clamav.net", "rsync2.clamav.net"]
