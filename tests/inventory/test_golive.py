"""A new mirror from its registration mail to its first publish: register, check, trust."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from devtools.harness.cvd import DEFAULT_VERSIONS
from devtools.harness.documents import LAB_INVENTORY
from devtools.harness.nginx import Nginx
from pushwire.authorized_keys import fingerprint
from syncd.cli import app
from syncd.files import edit_inventory, read_inventory
from syncd.inventory.edits import text_updated
from tests.publish.fakes import MirrorFactory
from tests.publish.fixtures import Syncd, by_name

LINE = (
    "clamav.mirror.example.org ip address: 127.0.0.1 country: Poland "
    "admin: Jo Admin <jo@mirror.example.org> || <alerts@mirror.example.org>"
)
MAIL = (
    f"From: jo@mirror.example.org\nSubject: new ClamAV mirror\n\nHello, please add us:\n\n{LINE}\n"
)
EXPECT = [f"--expect={db}={v}" for db, v in DEFAULT_VERSIONS.items()]


def _cli(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    return result.exit_code, result.output


def test_register_from_mail(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.toml"
    inv.write_text(LAB_INVENTORY)  # the mail registers 127.0.0.1
    code, out = _cli("mirrors", "register", "-", "--inventory", str(inv), stdin=MAIL)
    assert code == 0, out
    m = read_inventory(inv).get("clamav.mirror.example.org")
    assert m is not None and m.pending and m.host_keys == []
    assert (m.host, m.country, m.admins, m.notify) == (
        "127.0.0.1",
        "PL",
        ["Jo Admin <jo@mirror.example.org>"],
        ["alerts@mirror.example.org"],
    )
    assert read_inventory(inv).active() == []  # no pinned key: never pushed to
    code, out = _cli("mirrors", "list", "--inventory", str(inv))
    assert "pending" in out
    # the same mail twice adds nothing; a malformed one names the problem
    code, out = _cli("mirrors", "register", "-", "--inventory", str(inv), stdin=MAIL)
    assert code == 2 and "already in the inventory" in out
    bad = MAIL.replace("country: Poland", "country: Atlantis")
    code, out = _cli("mirrors", "register", "-", "--inventory", str(inv), stdin=bad)
    assert code == 2 and "country 'Atlantis' is not a country name or ISO code" in out
    code, out = _cli("mirrors", "register", "-", "--inventory", str(inv), stdin="hello\n")
    assert code == 2 and "no registration line found" in out


def _docroot(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    root.mkdir()
    (root / "local_test").write_text("Success")
    return root


def test_check_vhosts_and_host_key(
    tmp_path: Path, nginx_factory: Callable[..., Nginx], fake_mirror: MirrorFactory
) -> None:
    inv = tmp_path / "inventory.toml"
    inv.write_text(LAB_INVENTORY)  # the mail registers 127.0.0.1
    _cli("mirrors", "register", "-", "--inventory", str(inv), stdin=MAIL)
    name = "clamav.mirror.example.org"
    server = fake_mirror("x.test", "ok").sshd
    edit_inventory(inv, lambda t: text_updated(t, name, port=server.port))
    good = nginx_factory(
        _docroot(tmp_path, "good"), server_names=["database.clamav.net", "db.*.clamav.net", name]
    )
    wrong = nginx_factory(_docroot(tmp_path, "wrong"), server_names=["database.clamav.net", name])
    moved = nginx_factory(
        _docroot(tmp_path, "moved"),
        server_names=["database.clamav.net", "db.*.clamav.net", name],
        extra_locations=["location = /local_test { return 301 https://x/; }"],
    )

    code, out = _cli("mirrors", "check", name, "--inventory", str(inv), "--http", good.base_url)
    assert code == 0, out
    assert out.count("ok   http: /local_test") == 3
    assert f"ok   ssh: host key: {fingerprint(server.host_key_line)} (ssh-ed25519)" in out

    code, out = _cli("mirrors", "check", name, "--inventory", str(inv), "--http", wrong.base_url)
    assert code == 1
    assert "FAIL http: /local_test for Host db.test.clamav.net: answered" in out

    code, out = _cli("mirrors", "check", name, "--inventory", str(inv), "--http", moved.base_url)
    assert code == 1
    assert "redirects to https://x/: serve the files on this name directly" in out


def test_trust_pins_only_the_fingerprint_the_admin_sent_then_publish_activates(
    tmp_path: Path, fake_mirror: MirrorFactory, syncd: Syncd
) -> None:
    mirror = fake_mirror("x.test", "ok")
    syncd.write("")
    inv = syncd.inventory
    _cli("mirrors", "register", "-", "--inventory", str(inv), stdin=MAIL)
    name = "clamav.mirror.example.org"
    edit_inventory(
        inv,
        lambda t: text_updated(
            t, name, port=mirror.sshd.port, user=mirror.sshd.account.name, http=None
        ),
    )
    other = "SHA256:" + "A" * 43
    code, out = _cli("mirrors", "trust", name, "--fingerprint", other, "--inventory", str(inv))
    assert code == 1 and "nothing pinned" in out
    assert read_inventory(inv).get(name).host_keys == []  # type: ignore[union-attr]

    right = fingerprint(mirror.sshd.host_key_line)
    code, out = _cli("mirrors", "trust", name, "--fingerprint", right, "--inventory", str(inv))
    assert code == 0, out
    assert read_inventory(inv).get(name).host_keys == [mirror.sshd.host_key_line]  # type: ignore[union-attr]

    code, doc, err = syncd.publish(*EXPECT)
    assert code == 0, err
    assert by_name(doc)[name]["outcome"] == "ok"
    assert "now active (first successful publish)" in err
    assert read_inventory(inv).get(name).pending is False  # type: ignore[union-attr]
