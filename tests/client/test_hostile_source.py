"""A hostile rsync source: what it serves must never become bad bytes served by the mirror, a
write outside the served tree, or an `ok` for a release the mirror does not serve."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from clientside import publish
from clientside.core.publishplan import plan_publish
from clientside.fsutil import listing
from devtools.harness.account import MirrorAccount, give_to, make_traversable
from devtools.harness.client import client_command
from devtools.harness.cvd import build_cvd, corrupt_body, write_cvd
from devtools.harness.nginx import Nginx
from devtools.harness.rsyncd import RsyncDaemon
from devtools.harness.sshd import Sshd, forced_command_line
from devtools.harness.sshkeys import KeyPair
from tests.client.conftest import R1, R2, Mirror, fresh_mtime
from tests.client.test_sshd import _ssh

SUCCESS = b"Success\n"


def get(web: Nginx, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(web.host, web.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": "db.test.clamav.net"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def settle(mirror: Mirror) -> dict[str, bytes]:
    """Run one good sync; return what TO serves (regular files, by name)."""
    (mirror.to / "local_test").write_bytes(SUCCESS)
    res = mirror.run()
    assert res.rc == 0, res.stdout + res.stderr
    return {p.name: p.read_bytes() for p in mirror.to.iterdir() if p.is_file()}


def _old_bin(source: Path) -> Path:
    old = source / "old.bin"
    old.write_bytes(build_cvd("daily", 100))
    corrupt_body(old)
    fresh_mtime(old)
    return old


def test_a_symlinked_database_is_never_served(
    mirror: Mirror, source_tree: Path, nginx_factory: Callable[..., Nginx]
) -> None:
    before = settle(mirror)
    web = nginx_factory(mirror.to)
    _old_bin(source_tree)
    (source_tree / "daily.cvd").unlink()
    (source_tree / "daily.cvd").symlink_to("old.bin")
    for command in (None, "sync run-id=r expect-main=62"):
        res = mirror.run(command=command)
        rep = res.report
        assert rep["status"] == "failed", (command, rep)
        assert "daily.cvd" in rep["error"]["message"]
        assert not (mirror.to / "daily.cvd").is_symlink()
        assert get(web, "/daily.cvd") == (200, before["daily.cvd"])
        assert rep["databases"]["daily"]["version"] == 28033, rep["databases"]


def _link(p: Path) -> None:
    p.symlink_to("old.bin")


def _directory(p: Path) -> None:
    p.mkdir()
    (p / "daily.cvd").write_bytes(build_cvd("daily", 99999))


def _regular(p: Path) -> None:
    p.write_bytes(build_cvd("daily", 99999))


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("daily.cld", _link),
        ("main.cud", _link),
        ("daily-28034.cdiff", _link),
        ("daily-28034.cdiff.sign", _link),
        ("daily.cud", _directory),
        ("bytecode.cvd.sign", _regular),  # not a release file name: never verified
        ("evil.cdiff", _regular),
    ],
)
def test_a_checked_name_is_served_only_as_a_verified_regular_file(
    mirror: Mirror, source_tree: Path, name: str, make: Callable[[Path], None]
) -> None:
    settle(mirror)
    _old_bin(source_tree)
    make(source_tree / name)
    rep = mirror.run().report
    assert rep["status"] == "failed", rep
    assert rep["error"]["kind"] == "corrupt_file" and name in rep["error"]["message"]
    assert not (mirror.to / name).exists() and not (mirror.to / name).is_symlink()
    assert (mirror.to / "old.bin").exists()  # not a checked name: published as before


def test_a_corrupt_cld_is_never_served(mirror: Mirror, source_tree: Path) -> None:
    settle(mirror)
    old = _old_bin(source_tree)
    old.rename(source_tree / "daily.cld")
    rep = mirror.run().report
    assert rep["status"] == "failed"
    assert "daily.cld" in rep["error"]["message"]
    assert not (mirror.to / "daily.cld").exists()


def test_an_older_database_is_never_served_whatever_the_request(
    mirror: Mirror, source_tree: Path
) -> None:
    before = settle(mirror)
    fresh_mtime(write_cvd(source_tree, "daily", 28000))
    for command in (None, "sync expect-main=62"):
        rep = mirror.run(command=command).report
        assert rep["status"] == "failed" and rep["error"]["kind"] == "downgrade", rep["error"]
        assert (mirror.to / "daily.cvd").read_bytes() == before["daily.cvd"]


def _sub_directory(source: Path) -> None:
    """Round 2 of the attack: ``sub`` becomes a real directory holding a ``local_test`` and an
    older, valid ``daily.cvd``."""
    (source / "sub").unlink()
    (source / "sub").mkdir()
    (source / "sub" / "local_test").write_bytes(b"Hacked\n")
    fresh_mtime(write_cvd(source / "sub", "daily", 28000), source / "sub" / "local_test")


@pytest.mark.parametrize("served_link", [False, True], ids=["source-link", "served-link"])
def test_a_symlinked_directory_is_never_written_through(
    mirror: Mirror, source_tree: Path, nginx_factory: Callable[..., Nginx], served_link: bool
) -> None:
    """``sub -> .`` then ``sub/``: whether the link came from the source (never published) or
    TO already has it (an older client published it), nothing lands in TO through it."""
    mirror.write_config(EXCLUDE="--exclude /local_*")  # protects top-level names only
    before = settle(mirror)
    web = nginx_factory(mirror.to)
    (source_tree / "sub").symlink_to(".")
    rep = mirror.run().report
    assert not (mirror.to / "sub").is_symlink()
    assert any("sub: symlink not published" in w for w in rep["warnings"]), rep["warnings"]
    if served_link:
        (mirror.to / "sub").symlink_to(".")
    _sub_directory(source_tree)
    rep = mirror.run(command="sync expect-daily=28033").report
    assert (mirror.to / "local_test").read_bytes() == SUCCESS
    assert (mirror.to / "daily.cvd").read_bytes() == before["daily.cvd"]
    assert get(web, "/local_test") == (200, SUCCESS)
    assert get(web, "/daily.cvd") == (200, before["daily.cvd"])
    if served_link:
        assert rep["status"] == "failed"
        assert "sub: TO and the source disagree" in rep["error"]["message"], rep["error"]
    else:
        assert rep["status"] == "ok", rep["error"]
        assert (mirror.to / "sub").is_dir() and not (mirror.to / "sub").is_symlink()
        assert (mirror.to / "sub" / "local_test").read_bytes() == b"Hacked\n"


@pytest.mark.parametrize("served", ["", "local_stats", "{outside}"])
def test_an_admins_symlinked_directory_is_never_written_through(
    mirror: Mirror, source_tree: Path, tmp_path: Path, served: str
) -> None:
    """The admin's ``local_stats`` links to a directory outside TO. The source adds
    ``stats -> local_stats`` (never published), or TO already has ``stats`` linking there
    (an older client's doing, or the admin's): the source's ``stats/`` never lands outside."""
    settle(mirror)
    outside = tmp_path / "outside"
    outside.mkdir()
    (mirror.to / "local_stats").symlink_to(outside)
    (source_tree / "stats").symlink_to("local_stats")
    mirror.run()
    if served:
        (mirror.to / "stats").symlink_to(served.format(outside=outside))
    (source_tree / "stats").unlink()
    (source_tree / "stats").mkdir()
    (source_tree / "stats" / "index.html").write_text("planted\n")
    rep = mirror.run().report
    assert list(outside.iterdir()) == []
    assert rep["status"] == ("failed" if served else "ok"), rep["error"]
    assert (mirror.to / "local_stats").is_symlink()


def test_an_alias_never_replaces_a_served_database(
    mirror: Mirror, source_tree: Path, nginx_factory: Callable[..., Nginx]
) -> None:
    before = settle(mirror)
    web = nginx_factory(mirror.to)
    (source_tree / "daily.cvd").unlink()
    path = write_cvd(source_tree, "daily", 99999)
    path.rename(source_tree / "daily.cud")
    for command in (None, "sync expect-daily=28034"):
        rep = mirror.run(command=command).report
        assert rep["status"] == "failed", (command, rep)
        assert (mirror.to / "daily.cvd").read_bytes() == before["daily.cvd"]
        assert rep["databases"]["daily"]["file"] == "daily.cvd"
        assert rep["databases"]["daily"]["version"] == 28033
        assert get(web, "/daily.cvd") == (200, before["daily.cvd"])
        assert rep["files_deleted"] == 0
    assert "daily.cud instead" in rep["warnings"][0] + rep["error"]["message"]


def test_the_report_describes_the_cvd_beside_an_alias(mirror: Mirror, source_tree: Path) -> None:
    settle(mirror)
    path = write_cvd(source_tree / "x", "daily", 99999)
    path.rename(source_tree / "daily.cud")
    rep = mirror.run().report
    assert rep["databases"]["daily"]["file"] == "daily.cvd"
    assert rep["databases"]["daily"]["version"] == 28033


def test_dot_files_and_server_scripts_are_held_back(
    mirror: Mirror, source_tree: Path, nginx_factory: Callable[..., Nginx]
) -> None:
    settle(mirror)
    web = nginx_factory(mirror.to)
    (mirror.to / ".htaccess").write_text("# the admin's own\n")  # never the source's to remove
    (source_tree / ".htaccess").write_text("Redirect / http://evil.example/\n")
    (source_tree / "x.php").write_text("<?php system($_GET['c']); ?>\n")
    (source_tree / "daily.php.cvd").write_text("<?php system($_GET['c']); ?>\n")
    (source_tree / ".well-known").mkdir()
    (source_tree / ".well-known" / "y").write_text("y\n")
    rep = mirror.run().report
    assert (mirror.to / ".htaccess").read_text() == "# the admin's own\n"
    assert not (mirror.to / "x.php").exists() and get(web, "/x.php")[0] == 404
    assert not (mirror.to / "daily.php.cvd").exists()
    assert not (mirror.to / ".well-known").exists()
    assert any(".htaccess" in w for w in rep["warnings"]), rep["warnings"]
    assert any("x.php" in w for w in rep["warnings"]), rep["warnings"]
    # held back, not failed: the release itself is served
    assert rep["status"] == "ok", rep["error"]
    assert rep["databases"]["daily"]["version"] == 28033


def test_a_hostile_source_through_real_sshd_and_nginx(
    tmp_path: Path,
    source_tree: Path,
    rsync_pair: tuple[RsyncDaemon, RsyncDaemon],
    account: MirrorAccount,
    keypair: KeyPair,
    sshd_factory: Callable[..., Sshd],
    nginx_factory: Callable[..., Nginx],
    client_zipapp: Path,
) -> None:
    """The mirror's real path: an ssh login with no command (SSH_ORIGINAL_COMMAND unset, so
    nothing is expected) runs the zipapp as the mirror account, and nginx serves TO. The source
    links ``daily.cvd`` to a corrupt file, ships ``main.cud`` instead of ``main.cvd``, an
    ``.htaccess`` and a script: nginx keeps serving the verified release."""
    r1, r2 = rsync_pair
    base = tmp_path / "clamavdb"
    to, etc, var = base / "public_html", base / "etc", base / "var"
    for d in (to, etc, var):
        d.mkdir(parents=True)
    (to / "local_test").write_bytes(SUCCESS)
    conf = etc / "clam-clientsync.conf"
    conf.write_text(
        f"TO={to}\nRSYNC_USER={r1.user}\nRSYNC_PASSWORD='{r1.password}'\nMODULE=clamavdb\n"
        f'EXCLUDE="--exclude local_*"\nSTATE_DIR={var}\n'
        f'SOURCES="{R1}={r1.url} {R2}={r2.url}"\n'
    )
    conf.chmod(0o600)
    give_to(account, base)
    make_traversable(base)
    line = " ".join([*client_command(client_zipapp), "--config", str(conf), R1])
    sshd = sshd_factory(authorized_keys=[forced_command_line(keypair.public_line, line)])
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {sshd.host_key_line}\n")
    web = nginx_factory(to)

    first = _ssh(sshd, keypair, account, known, "")
    assert json.loads(first.stdout)["status"] == "ok", first.stdout + first.stderr
    good = {name: (to / name).read_bytes() for name in ("daily.cvd", "main.cvd")}
    _old_bin(source_tree)
    (source_tree / "daily.cvd").unlink()
    (source_tree / "daily.cvd").symlink_to("old.bin")
    write_cvd(source_tree / "alias", "main", 99).rename(source_tree / "main.cud")
    (source_tree / "main.cvd").unlink()
    (source_tree / ".htaccess").write_text("Redirect / http://evil.example/\n")
    (source_tree / "x.php").write_text("<?php system($_GET['c']); ?>\n")

    res = _ssh(sshd, keypair, account, known, "")
    rep = json.loads(res.stdout)
    assert res.returncode != 0 and rep["status"] == "failed", res.stdout
    assert rep["run_id"] is None  # nothing was asked for: the checks ran all the same
    for name, data in good.items():
        assert not (to / name).is_symlink()
        assert get(web, f"/{name}") == (200, data)
        assert rep["databases"][name[:-4]]["file"] == name
    assert rep["databases"]["daily"]["version"] == 28033
    assert rep["databases"]["main"]["version"] == 62
    assert not (to / ".htaccess").exists() and get(web, "/x.php")[0] == 404
    assert get(web, "/local_test") == (200, SUCCESS)


def test_a_served_symlinked_database_is_reported_not_dropped(
    mirror: Mirror, source_tree: Path
) -> None:
    """TO already serves ``daily.cvd`` as a symlink (an older client published one): the
    report says daily is served unverified rather than leaving it out, and a good release
    replaces the link by the verified file."""
    settle(mirror)
    old = _old_bin(mirror.to)
    (mirror.to / "daily.cvd").unlink()
    (mirror.to / "daily.cvd").symlink_to(old.name)
    corrupt_body(source_tree / "daily.cvd")
    fresh_mtime(source_tree / "daily.cvd")
    rep = mirror.run().report
    assert rep["status"] == "failed"
    assert rep["databases"]["daily"] == {
        "file": "daily.cvd",
        "version": None,
        "build_time": None,
        "signatures": None,
        "md5_ok": False,
    }
    fresh_mtime(write_cvd(source_tree, "daily", 28034))
    rep = mirror.run().report
    assert rep["status"] == "ok", rep["error"]
    assert not (mirror.to / "daily.cvd").is_symlink()
    assert rep["databases"]["daily"]["version"] == 28034 and rep["databases"]["daily"]["md5_ok"]


def test_an_alias_the_source_retires_goes_quietly(mirror: Mirror, source_tree: Path) -> None:
    """The reverse is no attack: a served ``daily.cud`` the source stops shipping beside its
    ``daily.cvd`` is pruned as any file the source dropped."""
    settle(mirror)
    alias = source_tree / "daily.cud"
    alias.write_bytes((source_tree / "daily.cvd").read_bytes())
    assert mirror.run().report["status"] == "ok"
    assert (mirror.to / "daily.cud").exists()
    alias.unlink()
    rep = mirror.run().report
    assert rep["status"] == "ok", rep["error"]
    assert not (mirror.to / "daily.cud").exists() and rep["files_deleted"] == 1


def test_a_directory_swapped_for_a_link_after_the_plan_is_not_written_through(
    tmp_path: Path,
) -> None:
    """The race the plan cannot see: TO's ``sub`` is a directory when listed and a symlink
    when written. The descriptor walk stops at it; nothing lands outside TO."""
    to, staging, outside = tmp_path / "to", tmp_path / "staging", tmp_path / "outside"
    for d in (to / "sub", staging / "sub", outside):
        d.mkdir(parents=True)
    (staging / "sub" / "daily.cvd").write_bytes(build_cvd("daily", 28034))
    (staging / "top.txt").write_text("top\n")
    staged, served = listing(str(staging), skip_private=False), listing(str(to))
    plan_ = plan_publish(staged, served, patterns=("/local_*",), failed=frozenset())
    assert plan_.publish == ["top.txt", "sub/daily.cvd"]
    (to / "sub").rmdir()
    (to / "sub").symlink_to(outside)
    done = publish.execute(plan_, str(to), str(staging), 10)
    assert list(outside.iterdir()) == []
    assert done.published == 1 and (to / "top.txt").read_text() == "top\n"
    assert done.problems == ["sub/daily.cvd: sub is not a real directory; not published"]
