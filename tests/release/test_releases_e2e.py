"""Two releases published to real sshd mirrors (fake clients), proven over HTTP from real
nginx, announced in a real BIND's TXT record, mailed to a real SMTP server (aiosmtpd): the
propagation figures are the served times the record holds, and each release is mailed once,
never while the gate stays closed, retried after the server refused it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devtools.harness.cvd import DEFAULT_VERSIONS, write_release
from devtools.harness.documents import report, write_secret
from devtools.harness.named import Named
from devtools.harness.nginx import Nginx
from devtools.harness.smtp import SmtpSink
from tests.publish.fakes import BEHAVIOURS, FakeMirror, MirrorFactory
from tests.publish.fixtures import FAST_POLICY, Syncd

D = DEFAULT_VERSIONS["daily"]
HOSTILE_BUILDER = "evil\x1b[2J\x07builder\x7f"  # ASCII, as a header must be, with controls


def _serves(mirror: FakeMirror, versions: dict[str, int]) -> None:
    """What the fake client reports after its next sync."""
    path = mirror.state / "report.json"
    path.write_text(report("ok", versions))
    path.chmod(0o644)


def _served_times(state: Path, daily: int) -> tuple[float, dict[str, float]]:
    """From the record itself: the release's first run start, and per mirror the first time a
    run of that release recorded it ok."""
    conn = sqlite3.connect(state)
    runs = conn.execute(
        "SELECT run_id, started_at, expected FROM publish_runs WHERE kind = 'release'"
    ).fetchall()
    ids = [r[0] for r in runs if json.loads(r[2])["daily"] == daily]
    start = min(r[1] for r in runs if r[0] in ids)
    served: dict[str, float] = {}
    for mirror, at in conn.execute(
        f"SELECT mirror, finished_at FROM publish_targets WHERE outcome = 'ok' AND run_id IN "
        f"({', '.join('?' * len(ids))})",
        ids,
    ):
        served[mirror] = min(at, served.get(mirror, at))
    conn.close()
    return start, served


def _mail_row(state: Path, daily: int) -> tuple[Any, ...] | None:
    conn = sqlite3.connect(state)
    row = conn.execute(
        "SELECT sent_at IS NOT NULL, tries, error FROM release_mail WHERE daily = ?", (daily,)
    ).fetchone()
    conn.close()
    return row


@pytest.fixture
def sink() -> Any:
    with SmtpSink() as s:
        yield s


def test_two_releases_measured_and_each_mailed_once(
    tmp_path: Path,
    fake_mirror: MirrorFactory,
    nginx_factory: Callable[..., Nginx],
    syncd: Syncd,
    sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(BEHAVIOURS, "follows", 'cat "$STATE/report.json"\nexit 0\n')
    source = tmp_path / "source"
    write_release(source, **DEFAULT_VERSIONS)
    roots = {n: tmp_path / n for n in ("one", "two")}
    write_release(roots["one"], **DEFAULT_VERSIONS)
    write_release(roots["two"], D - 1)  # serves the release before over HTTP
    webs = {n: nginx_factory(r) for n, r in roots.items()}
    mirrors = {n: fake_mirror(f"{n}.test", "follows") for n in roots}
    for m in mirrors.values():
        _serves(m, dict(DEFAULT_VERSIONS))
    with Named(tmp_path / "named") as named:
        secret = write_secret(tmp_path / "tsig.secret", named.secret)
        extra = (
            f'\n[dns]\nserver = "{named.host}"\nport = {named.port}\n'
            f'key_name = "{named.key_name}"\nkey_secret_file = "{secret}"\ngate_share = 1.0\n'
            f'\n[monitor.smtp]\nhost = "{sink.host}"\nport = {sink.port}\n'
            'sender = "monitor@example.org"\n'
            '\n[announce]\nto = "virusdb@lists.example.org"\nsender = "db@example.org"\n'
            'signature = "ClamAV test publishing"\n'
        )
        syncd.write(
            mirrors["one"].inventory_block(http=webs["one"].base_url, country="PL")
            + mirrors["two"].inventory_block(http=webs["two"].base_url, country="DE"),
            policy=f'source_tree = "{source}"\n' + FAST_POLICY + extra,
        )

        # the gate stays closed (two serves the old daily): nothing announced, nothing mailed
        code, doc, err = syncd.publish()
        assert code == 1, err
        assert not doc["dns"]["gate"]["open"]
        assert doc["announcement"]["sent"] is False
        assert doc["announcement"]["skipped"] == "no release announced in DNS yet"
        assert sink.messages == [] and _mail_row(syncd.state, D) is None

        # two catches up, the gate opens; the list's server refuses: reported, recorded,
        # the publish is done all the same (exit 0)
        write_release(roots["two"], **DEFAULT_VERSIONS)
        sink.refuse = 1
        code, doc, err = syncd.publish()
        assert code == 0, err
        assert doc["dns"]["gate"]["open"] and doc["dns"]["sent"]
        assert doc["announcement"]["sent"] is False and "refused" in doc["announcement"]["error"]
        assert "not sent (retried next time)" in err
        assert sink.refused == 1 and sink.messages == []
        assert _mail_row(syncd.state, D) == (0, 1, doc["announcement"]["error"])

        # the next publish sends it; every later one, and the monitor's pass, do not
        for _ in range(2):
            code, doc, err = syncd.publish()
            assert code == 0, err
        assert len(sink.messages) == 1
        assert doc["announcement"] == {
            "daily": D,
            "sent": False,
            "error": None,
            "skipped": "mailed before",
        }
        assert _mail_row(syncd.state, D) == (1, 2, None)
        proc = syncd.run(
            "monitor", "--config", str(syncd.config), "--once", "--json", "--no-dns", timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["announcement"]["skipped"] == "mailed before"
        assert len(sink.messages) == 1
        first = sink.messages[0]
        assert first["To"] == "virusdb@lists.example.org" and first["From"] == "db@example.org"
        assert first["Subject"] == (
            f"ClamAV database update: daily {D}, main {DEFAULT_VERSIONS['main']}, "
            f"bytecode {DEFAULT_VERSIONS['bytecode']}"
        )
        assert sink.envelopes[0] == ("db@example.org", ["virusdb@lists.example.org"])

        # the next release: 150 signatures more in daily, a builder with control characters
        nxt = {**DEFAULT_VERSIONS, "daily": D + 1}
        built = {"signatures": 1150, "builder": HOSTILE_BUILDER}
        write_release(source, **nxt, **built)
        for n, root in roots.items():
            write_release(root, **nxt, **built)
            _serves(mirrors[n], nxt)
        sink.refuse = 1  # refused at the publish: the monitor's next pass sends it
        code, doc, err = syncd.publish()
        assert code == 0, err
        assert "refused" in doc["announcement"]["error"]
        assert len(sink.messages) == 1
        proc = syncd.run(
            "monitor", "--config", str(syncd.config), "--once", "--json", "--no-dns", timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["announcement"]["sent"] is True
        assert f"announcement of daily {D + 1} mailed to the list" in proc.stderr
        code, doc, err = syncd.publish()
        assert doc["announcement"]["skipped"] == "mailed before"
        assert len(sink.messages) == 2 and sink.refused == 2
        body = sink.messages[1].get_content()
        assert "\x1b" not in body and "\x07" not in body and "\x7f" not in body
        assert "by evil[2Jbuilder" in body
        daily_line = next(line for line in body.splitlines() if line.startswith("  daily "))
        assert f" {D + 1} " in daily_line and " 1150 " in daily_line and " +150 " in daily_line
        assert "2 of 2 active mirrors serve it (100%)" in body
        [txt] = named.dig("current.cvd", "TXT")
        assert f":{D + 1}:" in txt

    # the figures: what the record says each mirror was proven to serve, and when
    proc = syncd.run("releases", "--config", str(syncd.config), "--json")
    assert proc.returncode == 0, proc.stderr
    releases = json.loads(proc.stdout)["releases"]
    assert [r["versions"]["daily"] for r in releases] == [D + 1, D]
    for rel in releases:
        start, served = _served_times(syncd.state, rel["versions"]["daily"])
        times = sorted(served.values())
        assert rel["started_at"] == start
        assert rel["active"] == rel["served"] == 2 and rel["missing"] == []
        assert rel["from_start_s"] == {
            "t50": round(times[0] - start, 3),
            "t90": round(times[1] - start, 3),
            "t99": round(times[1] - start, 3),
            "t100": round(times[1] - start, 3),
        }
        assert rel["by_source"]["rsync1.clamav.net"]["served"] == 2
        assert rel["announced_at"] is not None and rel["announced_at"] >= start
        assert rel["from_build_s"]["t100"] is not None
    assert [len(r["runs"]) for r in releases] == [2, 4]
    # syncd runs show: the same release, in words and in JSON
    run_id = releases[0]["runs"][0]
    proc = syncd.run("runs", "show", run_id, "--config", str(syncd.config), "--json")
    assert json.loads(proc.stdout)["release"] == releases[0]
    proc = syncd.run("runs", "show", run_id, "--config", str(syncd.config))
    assert f"release bytecode={nxt['bytecode']} daily={D + 1}" in proc.stdout
    assert "served by 2 of 2 active mirrors" in proc.stdout
    proc = syncd.run("releases", "--config", str(syncd.config), "--last", "1")
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and len(lines) == 2  # the header, the newest release
    assert lines[1].split()[:3] == [str(D + 1), str(nxt["main"]), str(nxt["bytecode"])]
