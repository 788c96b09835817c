"""``syncd monitor`` with conditional checks, end to end against a real nginx mirror: the first
pass reads each release file whole and remembers what it proved; the next asks only for the
last bytes of each file and CVD (nginx answers 206; no CVD header asked again); a file
rewritten in place is caught on the pass after; ``conditional = false`` reads everything
whole again.

Proven able to fail: with run.py not passing what was proven to the checks (``known=None``),
the second pass read the five release files whole again (200s in nginx's log); with the proof
not saved, the same; with the conditional 206 trusted without its bytes compared, the cdiff
rewritten at its end under its old mtime was judged fresh."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from devtools.harness.cvd import release_time, write_release_tree
from devtools.harness.documents import LAB_INVENTORY
from devtools.harness.nginx import Nginx
from syncd.cli import app

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq0gZ7wI0nR0b7eQq0k9v3bq2yqLx1m6y1c7J8Vb3aT"
FILES = {
    "daily-28034.cdiff",
    "daily-28034.cdiff.sign",
    "daily-28034.cvd.sign",
    "main-62.cvd.sign",
    "bytecode-335.cvd.sign",
}


def _run(config: Path) -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(
        app, ["monitor", "--once", "--json", "--no-mail", "--no-dns", "--config", str(config)]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def _log_since(web: Nginx, mark: int) -> list[tuple[str, str]]:
    """(path, status) of each request nginx logged past byte `mark` of its access log."""
    lines = (web.workdir / "access.log").read_bytes()[mark:].decode().splitlines()
    out = []
    for line in lines:
        request = line.split('"')[1]
        status = line.split('"')[2].split()[0]
        out.append((request.split()[1].lstrip("/"), status))
    return out


def _setup(tmp_path: Path, nginx_factory: Callable[..., Nginx], conditional: bool) -> tuple:  # type: ignore[type-arg]
    built = release_time() - timedelta(hours=2)
    source, served = tmp_path / "source", tmp_path / "htdocs"
    write_release_tree(source, 28034, cdiffs=3, build_time=built)
    shutil.copytree(source, served)
    (served / "timestamp").write_text(f"{int(built.timestamp()) + 60}\n")
    web = nginx_factory(served)
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(
        LAB_INVENTORY
        + "\n".join(
            [
                "[[mirrors]]",
                'name = "one.example"',
                'host = "127.0.0.1"',
                'country = "PL"',
                'admins = ["One <one@example.org>"]',
                f'host_keys = ["{KEY}"]',
                f'http = "{web.base_url}"',
            ]
        )
        + "\n"
    )
    config = tmp_path / "syncd.toml"
    config.write_text(f"""
inventory = "{inventory}"
state = "{tmp_path / "state.sqlite"}"
source_tree = "{source}"
[monitor]
lagging_grace_h = 1
conditional = {str(conditional).lower()}
""")
    return web, served, config


def test_the_second_pass_is_conditional_and_a_rewrite_is_caught(
    tmp_path: Path, nginx_factory: Callable[..., Nginx]
) -> None:
    web, served, config = _setup(tmp_path, nginx_factory, conditional=True)
    first = _run(config)
    assert first["mirrors"][0]["state"] == "fresh"
    seen = _log_since(web, 0)
    assert {p for p, status in seen if status == "200"} == {"timestamp", *FILES}
    db = sqlite3.connect(tmp_path / "state.sqlite")
    proven = {r[0] for r in db.execute("SELECT name FROM monitor_proven")}
    assert proven == {*FILES, "daily.cvd", "main.cvd", "bytecode.cvd"}

    mark = (web.workdir / "access.log").stat().st_size
    second = _run(config)
    assert second["mirrors"][0]["state"] == "fresh"
    seen = _log_since(web, mark)
    assert {p for p, status in seen if status == "200"} == {"timestamp"}  # nothing read whole
    assert sorted(p for p, _ in seen if p in FILES) == sorted(FILES)  # each asked once
    cvds = ["bytecode.cvd", "daily.cvd", "main.cvd"]
    assert sorted(p for p, _ in seen if p.endswith(".cvd")) == cvds  # one request each

    # the cdiff's last byte rewritten, its size and mtime kept: nginx's ETag does not move
    cdiff = served / "daily-28034.cdiff"
    before = cdiff.stat().st_mtime
    data = bytearray(cdiff.read_bytes())
    data[-1] ^= 0x55
    cdiff.write_bytes(bytes(data))
    os.utime(cdiff, (before, before))
    third = _run(config)
    [mirror] = third["mirrors"]
    assert mirror["state"] != "fresh", mirror
    assert "daily-28034.cdiff's last 32 bytes differ from the release's" in mirror["reason"]


def test_conditional_false_reads_every_file_whole_every_pass(
    tmp_path: Path, nginx_factory: Callable[..., Nginx]
) -> None:
    web, _, config = _setup(tmp_path, nginx_factory, conditional=False)
    _run(config)
    mark = (web.workdir / "access.log").stat().st_size
    assert _run(config)["mirrors"][0]["state"] == "fresh"
    seen = _log_since(web, mark)
    assert {p for p, status in seen if status == "200"} == {"timestamp", *FILES}
