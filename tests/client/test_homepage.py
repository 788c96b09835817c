"""The mirror's home page end to end: a real sync (rsync daemons, the client as a process, and
once the whole path: sshd's forced command running the zipapp as the mirror account), then
nginx serving ``TO/index.html``. Hostile config values, templates and served trees."""

from __future__ import annotations

import http.client
import json
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from clientside.configfile import load_config
from clientside.locking import SyncLock
from clientside.verbs import sync as sync_mod
from devtools.harness.account import MirrorAccount, give_to, make_traversable
from devtools.harness.client import client_command
from devtools.harness.cvd import write_release
from devtools.harness.nginx import Nginx
from devtools.harness.rsyncd import RsyncDaemon
from devtools.harness.sshd import Sshd, forced_command_line
from devtools.harness.sshkeys import KeyPair
from pushwire import report
from pushwire.request import Request
from tests.client.conftest import R1, R2, Mirror, fresh_mtime
from tests.client.test_sshd import _ssh as ssh_push

HOST = "db.test.clamav.net"
HOSTILE = {
    "MIRROR_NAME": "</title><script>alert(1)</script>",
    "COUNTRY": '"><img src=x onerror=alert(1)>',
    "SPONSOR": "Ünïcödé \u202eHosting & Co",
    "SPONSOR_URL": "javascript:alert(1)",
    "CONTACT": "<b>[email protected]</b>",
    "SHOW_CONTACT": "yes",
}


def quoted(value: str) -> str:
    """`value` as a config line writes it: single quotes, a quote in it as '"'"'."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


def add_keys(mirror: Mirror, **keys: str) -> None:
    """Write the config with `keys` added, each quoted as a shell would need it."""
    mirror.write_config()
    with mirror.config.open("a", encoding="utf-8") as fh:
        fh.writelines(f"{k}={quoted(v)}\n" for k, v in keys.items())


def get(web: Nginx, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(web.host, web.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": HOST})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def page_of(web: Nginx) -> str:
    status, body = get(web, "/")
    assert status == 200, body[:200]
    return body.decode("utf-8")


def release_line(rep: dict[str, object]) -> str:
    dbs = rep["databases"]
    assert isinstance(dbs, dict)
    return ", ".join(f"{db} {dbs[db]['version']}" for db in ("daily", "main", "bytecode"))


def test_the_page_is_served_after_a_sync_and_escapes_everything(
    mirror: Mirror, nginx_factory: Callable[..., Nginx]
) -> None:
    (mirror.to / "local_stats").mkdir()
    (mirror.to / "local_stats" / "index.html").write_text("the admin's stats\n")
    (mirror.to / "local_test").write_text("Success\n")
    add_keys(mirror, **HOSTILE)
    res = mirror.run()
    rep = res.report
    assert rep["status"] == "ok", rep
    web = nginx_factory(mirror.to)
    page = page_of(web)
    # the built-in template (the source ships none), said once in the report
    assert any("ships no index-template.txt" in w for w in rep["warnings"])
    assert f"{release_line(rep)}, served here since " in page
    assert "&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in page and "<img src=x" not in page and "<b>" not in page
    assert "&lt;b&gt;[email protected]&lt;/b&gt;" in page
    assert "Ünïcödé Hosting &amp; Co" in page and "\u202e" not in page
    assert "javascript" not in page.lower() and "<a href" not in page
    assert '<img src="local_logo.png"' in page  # the fixture's TO has one
    assert any(w.startswith("SPONSOR_URL: only http:// and https://") for w in rep["warnings"])
    # the admin's files survive, and the logo is served
    assert get(web, "/local_logo.png") == (200, b"logo")
    assert (mirror.to / "local_stats" / "index.html").read_text() == "the admin's stats\n"
    assert get(web, "/local_test") == (200, b"Success\n")
    assert oct((mirror.to / "index.html").stat().st_mode & 0o777) == "0o644"

    # the contact only when the admin wants it; the logo only when it is there
    (mirror.to / "local_logo.png").unlink()
    add_keys(mirror, **{**HOSTILE, "SHOW_CONTACT": "no", "SPONSOR_URL": "https://h.example/?a&b"})
    rep2 = mirror.run().report
    assert rep2["status"] == "ok", rep2
    page = page_of(web)
    assert "[email protected]" not in page and "<img" not in page
    assert '<a href="https://h.example/?a&amp;b" rel="noopener noreferrer">' in page


def test_the_source_template_is_used_and_served_as_plain_text(
    mirror: Mirror, source_tree: Path, nginx_factory: Callable[..., Nginx]
) -> None:
    template = (
        "<html><title>{{mirror_name}}</title><body>{{#logo}}<img src='{{logo}}'>{{/logo}}"
        "<p id=r>{{release}}</p><p id=d>{{daily}}</p><p>{{served_since}}</p>"
        "{{^contact}}<p>no contact</p>{{/contact}}</body></html>\n"
    )
    (source_tree / "index-template.txt").write_text(template)
    (source_tree / "index.html").write_text("the source's own page\n")
    mirror.write_config(MIRROR_NAME="m.example")
    rep = mirror.run().report
    assert rep["status"] == "ok", rep
    assert not [w for w in rep["warnings"] if "home page" in w], rep["warnings"]
    web = nginx_factory(mirror.to)
    page = page_of(web)
    daily = rep["databases"]["daily"]["version"]
    assert page.startswith("<html><title>m.example</title><body><img src='local_logo.png'>")
    assert f"<p id=r>{release_line(rep)}</p><p id=d>{daily}</p>" in page
    assert "<p>no contact</p>" in page and "source's own page" not in page
    # carried and served as it is (a hub hands it on to its second wave)
    assert get(web, "/index-template.txt") == (200, template.encode())
    # since when: the report's round, and kept while the release stays
    since = page.split("</p><p>")[1].split("</p>")[0]
    assert rep["started_at"][:19] <= since[:19] <= rep["finished_at"][:19]
    inode = (mirror.to / "index.html").stat().st_ino
    again = mirror.run().report
    assert again["status"] == "ok"
    assert (mirror.to / "index.html").stat().st_ino == inode  # unchanged: not rewritten
    fresh_mtime(*write_release(source_tree, daily + 1).values())
    newer = mirror.run().report
    assert newer["databases"]["daily"]["version"] == daily + 1
    page = page_of(web)
    assert f"<p id=d>{daily + 1}</p>" in page
    assert newer["started_at"][:19] <= page.split("</p><p>")[1][:19] <= newer["finished_at"][:19]


@pytest.mark.parametrize(
    ("plant", "warning"),
    [
        ("link", "index-template.txt: is a symbolic link"),
        ("huge", "index-template.txt: larger than 64 KiB"),
        ("latin1", "index-template.txt: not UTF-8 (at byte 9)"),
        ("broken", "index-template.txt: line 2: unknown slot 'evil'"),
        ("directory", "index-template.txt: is not a regular file"),
    ],
)
def test_a_bad_template_never_fails_the_sync(
    mirror: Mirror, source_tree: Path, plant: str, warning: str
) -> None:
    target = source_tree / "index-template.txt"
    if plant == "link":  # a relative link inside the tree: published, never followed by us
        (source_tree / "other.txt").write_text("FOLLOWED {{daily}}\n")
        target.symlink_to("other.txt")
    elif plant == "huge":
        target.write_bytes(b"FOLLOWED " + b"x" * (16 << 20))
    elif plant == "latin1":
        target.write_bytes("FOLLOWED \xe9t\xe9 {{daily}}".encode("latin-1"))
    elif plant == "broken":
        target.write_text("FOLLOWED\n{{evil}}\n")
    else:
        target.mkdir()
        (target / "x").write_text("FOLLOWED\n")
    rep = mirror.run(timeout=120).report
    assert rep["status"] == "ok", rep
    told = [w for w in rep["warnings"] if w.startswith("home page: ")]
    assert len(told) == 1 and told[0].startswith(f"home page: {warning}"), told
    assert told[0].endswith("; the built-in template was used")
    page = (mirror.to / "index.html").read_text()
    assert "FOLLOWED" not in page and "<h1>ClamAV database mirror " in page
    assert release_line(rep) in page


def test_an_index_html_link_is_replaced_never_followed(mirror: Mirror, tmp_path: Path) -> None:
    victim = tmp_path / "victim.html"
    victim.write_text("not yours\n")
    (mirror.to / "index.html").symlink_to(victim)
    rep = mirror.run().report
    assert rep["status"] == "ok", rep
    assert victim.read_text() == "not yours\n"
    page = mirror.to / "index.html"
    assert not page.is_symlink() and "ClamAV database mirror" in page.read_text()


def test_an_index_html_directory_is_a_warning_only(mirror: Mirror) -> None:
    (mirror.to / "index.html").mkdir()
    (mirror.to / "index.html" / "keep").write_text("x")
    rep = mirror.run().report
    assert rep["status"] == "ok", rep
    assert any("index.html in TO is a directory (remove it: rm -r " in w for w in rep["warnings"])
    assert (mirror.to / "index.html" / "keep").read_text() == "x"
    assert rep["databases"]["daily"]["md5_ok"]


def test_a_sync_that_fails_still_leaves_the_page(bare_mirror: Mirror) -> None:
    """No source answers: nothing is published, and the page shows what TO serves."""
    rep = bare_mirror.run().report
    assert rep["status"] == "failed"
    page = (bare_mirror.to / "index.html").read_text()
    assert "no release is served yet" in page
    assert (bare_mirror.to / "local_logo.png").read_bytes() == b"logo"


def test_the_page_is_replaced_atomically_while_served(
    mirror: Mirror, source_tree: Path, nginx_factory: Callable[..., Nginx]
) -> None:
    assert mirror.run().report["status"] == "ok"
    web = nginx_factory(mirror.to)
    stop = threading.Event()
    bad: list[str] = []
    seen = [0]

    def reader() -> None:
        conn = http.client.HTTPConnection(web.host, web.port, timeout=10)
        while not stop.is_set():
            conn.request("GET", "/", headers={"Host": HOST})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200 or not body.endswith(b"</html>\n"):
                bad.append(f"{resp.status}: {body[-40:]!r}")
            seen[0] += 1
        conn.close()

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for i in range(1, 9):
            fresh_mtime(*write_release(source_tree, 28033 + i).values())
            rep = mirror.run().report
            assert rep["status"] == "ok", rep
            assert f"daily {28033 + i}," in page_of(web)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    assert not bad, bad[:5]
    assert seen[0] > 20
    assert not [p for p in os.listdir(mirror.to) if p.startswith(".clam-clientsync-tmp.")]


def test_a_page_warning_is_told_once_however_many_rounds(
    mirror: Mirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push during the sync makes it go round again: the page's warning is not repeated."""
    ctx = sync_mod.SyncContext(
        load_config(str(mirror.config), str(mirror.root), R1), Request("sync", None, {}, None),
        R1, str(mirror.root), "/bin/false",
    )  # fmt: skip
    real_round = sync_mod._round
    rounds = []

    def pushed_meanwhile(c: Any, lock: SyncLock, found: Any) -> Any:
        rounds.append(1)
        if len(rounds) == 1:
            lock.set_mark("pushed-meanwhile")
        return real_round(c, lock, found)

    monkeypatch.setattr(sync_mod, "_round", pushed_meanwhile)
    os.makedirs(mirror.state, exist_ok=True)
    rep = report.new_report("sync", datetime.now(UTC), "test", None)
    sync_mod.sync(ctx, rep)
    assert rep["rounds"] == 2
    told = [w for w in rep["warnings"] if w.startswith("home page")]
    assert told == [
        "home page: the source ships no index-template.txt; the built-in template was used"
    ]


def test_doctor_tells_what_the_page_shows(bare_mirror: Mirror) -> None:
    bare_mirror.write_config(
        MIRROR_NAME="m.example", SPONSOR="S", SPONSOR_URL="javascript:x", CONTACT="c@x"
    )
    out = bare_mirror.run(argv=["--doctor", "--config", str(bare_mirror.config)]).stdout
    assert (
        f"note  home page {bare_mirror.to}/index.html: name m.example, country - (COUNTRY=),"
        f" sponsor S, contact hidden (SHOW_CONTACT=yes shows it), logo {bare_mirror.to}/"
        "local_logo.png" in out
    )
    assert "FAIL  SPONSOR_URL: only http:// and https:// links are shown" in out
    assert f"ok    {bare_mirror.to}/index.html is not a directory" in out
    (bare_mirror.to / "index.html").mkdir()
    (bare_mirror.to / "local_logo.png").chmod(0o600)
    out = bare_mirror.run(argv=["--doctor", "--config", str(bare_mirror.config)]).stdout
    assert (
        f"FAIL  {bare_mirror.to}/index.html is not a directory (each sync writes the home page"
        f" there)\n      fix: rm -r {bare_mirror.to}/index.html" in out
    )
    assert f"fix: chmod 644 {bare_mirror.to}/local_logo.png" in out


# -- the whole path: a push through sshd, the zipapp as the mirror account -------------------


def _ssh(sshd: Sshd, key: KeyPair, account: MirrorAccount, known: Path, command: str) -> str:
    done = ssh_push(sshd, key, account, known, command)
    assert done.returncode == 0, done.stderr + sshd.log_text()[-2000:]
    return done.stdout


def test_a_push_through_sshd_publishes_the_page_nginx_serves(
    tmp_path: Path,
    source_tree: Path,
    rsync_pair: tuple[RsyncDaemon, RsyncDaemon],
    account: MirrorAccount,
    keypair: KeyPair,
    sshd_factory: Callable[..., Sshd],
    client_zipapp: Path,
    nginx_factory: Callable[..., Nginx],
) -> None:
    r1, r2 = rsync_pair
    base = tmp_path / "clamavdb"
    to, etc, var = base / "public_html", base / "etc", base / "var"
    for d in (to, etc, var):
        d.mkdir(parents=True)
    (to / "local_logo.png").write_bytes(b"\x89PNG logo")
    (source_tree / "index-template.txt").write_text(
        "<h1>{{mirror_name}}</h1><p>{{country}}</p><p>{{sponsor}}</p><p>{{release}}</p>"
        "{{#logo}}<img src='{{logo}}'>{{/logo}}\n"
    )
    conf = etc / "clam-clientsync.conf"
    conf.write_text(
        f"TO={to}\nRSYNC_USER={r1.user}\nRSYNC_PASSWORD='{r1.password}'\nSTATE_DIR={var}\n"
        f'SOURCES="{R1}={r1.url} {R2}={r2.url}"\nMIRROR_NAME=clamav.example.org\n'
        'COUNTRY=\'<Poland>\'\nSPONSOR="Q\'uote \\"Hosting\\""\n'
    )
    conf.chmod(0o600)
    give_to(account, base)
    make_traversable(base)
    command = " ".join([*client_command(client_zipapp), "--config", str(conf), R1])
    sshd = sshd_factory(authorized_keys=[forced_command_line(keypair.public_line, command)])
    known = tmp_path / f"known_hosts_{sshd.port}"
    known.write_text(f"[127.0.0.1]:{sshd.port} {sshd.host_key_line}\n")
    web = nginx_factory(to)
    for version in (28033, 28034):
        if version != 28033:
            fresh_mtime(*write_release(source_tree, version).values())
        rep = json.loads(_ssh(sshd, keypair, account, known, f"sync expect-daily={version}"))
        assert rep["status"] == "ok", rep
        assert not [w for w in rep["warnings"] if "home page" in w], rep["warnings"]
        assert page_of(web) == (
            "<h1>clamav.example.org</h1><p>&lt;Poland&gt;</p>"
            "<p>Q&#x27;uote &quot;Hosting&quot;</p>"
            f"<p>{release_line(rep)}</p><img src='local_logo.png'>\n"
        )
        assert (to / "index.html").stat().st_uid == account.uid
        assert get(web, "/local_logo.png") == (200, b"\x89PNG logo")
