"""syncd heartbeat end to end: real sshd mirrors forcing the real clam-clientsync against the
real rsync daemons, nginx serving what they published, and the real BIND holding current.cvd."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from devtools.harness.cvd import DEFAULT_VERSIONS, write_timestamp
from devtools.harness.documents import write_secret
from devtools.harness.named import Named
from devtools.harness.nginx import Nginx
from tests.publish.fixtures import FAST_POLICY, Syncd, by_name
from tests.publish.realclient import MirrorMaker

pytestmark = pytest.mark.slow
H = 3600


@pytest.fixture
def named(tmp_path: Path) -> Iterator[Named]:
    with Named(tmp_path / "named") as server:
        yield server


def _dns_section(named: Named, secret: Path) -> str:
    write_secret(secret, named.secret + "\n")
    return (
        f'[dns]\nserver = "{named.host}"\nport = {named.port}\nkey_name = "{named.key_name}"\n'
        f'key_secret_file = "{secret}"\nclamav_version = "1.4.3"\n'
    )


def _set_txt(named: Named, value: str) -> None:
    from syncd.dns.plan import Change
    from syncd.dns.server import DnsServer, read_records, send_update

    server = DnsServer(named.host, named.port, named.zone, named.key_name, named.secret)
    held = read_records(server, [("current.cvd", "TXT")])[("current.cvd", "TXT")]
    send_update(server, [Change("current.cvd", "TXT", (f'"{value}"',), held)])


def _txt(named: Named) -> list[str]:
    return [line.strip('"') for line in named.dig("current.cvd", "TXT")]


def _served_stamp(base_url: str) -> int:
    resp = httpx.get(
        f"{base_url}/timestamp",
        headers={"Host": "db.pl.clamav.net"},
        follow_redirects=False,
        trust_env=False,
    )
    assert resp.status_code == 200
    return int(resp.text)


def _heartbeat(syncd: Syncd, tree: Path, *extra: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    proc = syncd.run(
        "heartbeat", "--config", str(syncd.config), "--source-tree", str(tree), "--json", *extra
    )
    doc = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    return proc.returncode, doc, proc.stderr


def _runs(syncd: Syncd) -> list[tuple[str, str, int | None]]:
    db = sqlite3.connect(syncd.state)
    rows = db.execute("SELECT run_id, kind, heartbeat_stamp FROM publish_runs ORDER BY started_at")
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_heartbeat_moves_timestamp_and_txt_time_on_and_proves_it(
    tmp_path: Path,
    real_mirror: MirrorMaker,
    nginx_factory: Callable[..., Nginx],
    syncd: Syncd,
    source_tree: Path,
    named: Named,
) -> None:
    a, b = real_mirror("a.test", source=0), real_mirror("b.test", source=1)
    # c syncs like the others, but its web server serves a copy of its tree from before the
    # heartbeat: the push ends ok on the client's word, only the HTTP proof can catch it
    c = real_mirror("c.test")
    stale_root = tmp_path / "stale-htdocs"
    stale_root.mkdir()
    stale = nginx_factory(stale_root)
    syncd.write(
        a.inventory_block() + b.inventory_block(country="DE") + c.inventory_block(),
        policy=FAST_POLICY + _dns_section(named, tmp_path / "tsig.secret"),
    )
    # the last heartbeat was 5 h ago; the release was announced 13 h ago (freshclam would now
    # distrust DNS: "DNS record is older than 12 hours")
    now = time.time()
    write_timestamp(source_tree, now - 5 * H)
    code, doc, err = syncd.publish("--source-tree", str(source_tree), "--no-dns")
    assert code == 0, err
    shutil.copytree(c.docroot, stale_root, dirs_exist_ok=True)
    txt_before = f"1.4.3:62:{DEFAULT_VERSIONS['daily']}:{int(now - 13 * H)}:0:90:0:335"
    _set_txt(named, txt_before)

    syncd.write(
        a.inventory_block()
        + b.inventory_block(country="DE")
        + c.inventory_block(http=stale.base_url),
        policy=FAST_POLICY + _dns_section(named, tmp_path / "tsig.secret"),
    )
    before = int(time.time())
    code, doc, err = _heartbeat(syncd, source_tree)
    after = int(time.time())
    assert code == 1, err  # c does not serve the heartbeat
    assert doc["kind"] == "heartbeat" and doc["expected"] == DEFAULT_VERSIONS
    stamp = doc["timestamp"]
    assert before <= stamp <= after
    assert (source_tree / "timestamp").read_text() == f"{stamp}\n"
    got = by_name(doc)
    assert {n: m["outcome"] for n, m in got.items()} == {
        "a.test": "ok",
        "b.test": "ok",
        "c.test": "failed",
    }, err
    assert f"the heartbeat pushed {stamp}" in got["c.test"]["error"]
    for m in (a, b, c):
        assert _served_stamp(m.web.base_url) == stamp  # what the trees now hold
    assert _served_stamp(stale.base_url) == int(now - 5 * H)
    runs = _runs(syncd)
    assert [(kind, hb) for _, kind, hb in runs] == [("release", None), ("heartbeat", stamp)]

    # the TXT record: only its time moved on, to the heartbeat's now
    [txt] = _txt(named)
    fields, old = txt.split(":"), txt_before.split(":")
    assert fields[:3] + fields[4:] == old[:3] + old[4:]
    assert before <= int(fields[3]) <= after
    assert doc["dns"]["txt"]["sent"] and doc["dns"]["txt"]["previous"] == f'"{txt_before}"'
    rows = sqlite3.connect(syncd.state).execute("SELECT name, outcome FROM dns_changes").fetchall()
    assert rows == [("current.cvd", "sent")]

    # a resumed heartbeat still proves its stamp: c is still stale, still failed
    code, resumed, err = syncd.publish("--resume", runs[-1][0])
    assert code == 1 and by_name(resumed)["c.test"]["outcome"] == "failed", err


def test_txt_refresh_that_would_go_backwards_is_refused(
    tmp_path: Path, real_mirror: MirrorMaker, syncd: Syncd, source_tree: Path, named: Named
) -> None:
    a = real_mirror("a.test")
    syncd.write(
        a.inventory_block(), policy=FAST_POLICY + _dns_section(named, tmp_path / "tsig.secret")
    )
    future = f"1.4.3:62:{DEFAULT_VERSIONS['daily']}:{int(time.time() + H)}:0:90:0:335"
    _set_txt(named, future)
    code, doc, err = _heartbeat(syncd, source_tree)
    assert code == 1, err
    assert by_name(doc)["a.test"]["outcome"] == "ok"  # the push itself went through
    assert doc["dns"]["txt"]["error"] == "TXT record time would go backwards"
    assert _txt(named) == [future]  # untouched

    # a record announcing a version the source tree does not hold is not refreshed either
    ahead = f"1.4.3:62:{DEFAULT_VERSIONS['daily'] + 1}:{int(time.time() - H)}:0:90:0:335"
    _set_txt(named, ahead)
    code, doc, err = _heartbeat(syncd, source_tree)
    assert code == 1 and "but the source tree has" in doc["dns"]["txt"]["error"], err
    assert _txt(named) == [ahead]


def test_no_txt_record_yet_is_left_to_the_first_publish(
    tmp_path: Path, real_mirror: MirrorMaker, syncd: Syncd, source_tree: Path, named: Named
) -> None:
    a = real_mirror("a.test")
    syncd.write(
        a.inventory_block(), policy=FAST_POLICY + _dns_section(named, tmp_path / "tsig.secret")
    )
    code, doc, err = _heartbeat(syncd, source_tree)
    assert code == 0, err
    assert doc["dns"]["txt"]["value"] is None and not doc["dns"]["txt"]["sent"]
    assert _txt(named) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "refusing to move it backwards"),  # set to an hour ahead below
        (b"soon\n", "not a unix time"),
        (b"1" * 5000, "not a unix time"),
        (b"-5\n", "not a unix time"),
    ],
)
def test_heartbeat_refuses_before_pushing_anything(
    real_mirror: MirrorMaker,
    syncd: Syncd,
    source_tree: Path,
    content: bytes | None,
    message: str,
) -> None:
    a = real_mirror("a.test")
    syncd.write(a.inventory_block())
    stamp_file = source_tree / "timestamp"
    if content is None:
        write_timestamp(source_tree, time.time() + H)
    else:
        stamp_file.write_bytes(content)
    kept = stamp_file.read_bytes()
    code, doc, err = _heartbeat(syncd, source_tree)
    assert code == 2 and doc == {}
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert stamp_file.read_bytes() == kept
    assert not syncd.state.exists() or _runs(syncd) == []
    assert not (a.docroot / "timestamp").exists()  # nothing was pushed


def test_heartbeat_replaces_a_symlinked_timestamp_never_writes_through_it(
    tmp_path: Path, real_mirror: MirrorMaker, syncd: Syncd, source_tree: Path
) -> None:
    a = real_mirror("a.test")
    syncd.write(a.inventory_block())
    victim = tmp_path / "victim"
    victim.write_text("100\n")
    (source_tree / "timestamp").unlink()
    (source_tree / "timestamp").symlink_to(victim)
    code, doc, err = _heartbeat(syncd, source_tree)
    assert code == 0, err
    assert victim.read_text() == "100\n"
    stamp_file = source_tree / "timestamp"
    assert not stamp_file.is_symlink() and stamp_file.read_text() == f"{doc['timestamp']}\n"
