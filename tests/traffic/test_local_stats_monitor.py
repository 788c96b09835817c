"""The monitor asks every mirror for the guide's /local_stats/ (no credentials sent): real nginx
mirrors with it protected, open to the world, and absent; the open one's admins are warned once
by mail (the real SMTP server), the mirror stays in rotation, and the page, status.json and
the metrics say each verdict."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from devtools.harness.cvd import write_release
from devtools.harness.documents import LAB_INVENTORY
from devtools.harness.nginx import Nginx
from devtools.harness.smtp import SmtpSink
from syncd.sqlite import open_db
from syncd.traffic.store import TrafficStore
from tests.monitor.test_monitor_e2e import _docroot, _mirror, _run, released


def test_an_open_local_stats_warns_its_admins_once(
    tmp_path: Path, nginx_factory: Callable[..., Nginx], smtp_sink: SmtpSink
) -> None:
    source = tmp_path / "source"
    write_release(source, 28034, build_time=released())
    users = tmp_path / "htpasswd"
    users.write_text("clamavdb:{PLAIN}the-rsync-password\n")
    roots = {n: _docroot(tmp_path, n, 28034, 0.5) for n in ("locked", "open", "none")}
    for n in ("locked", "open"):
        (roots[n] / "local_stats").mkdir()
        (roots[n] / "local_stats" / "index.html").write_text("12345 requests\n")

    def names(n: str) -> list[str]:  # the monitor's checks use the db.XY names
        return [f"{n}.example", "database.clamav.net", "db.*.clamav.net"]

    webs = {
        "locked": nginx_factory(
            roots["locked"],
            server_names=names("locked"),
            extra_locations=[
                f'location /local_stats/ {{ auth_basic "s"; auth_basic_user_file {users}; }}'
            ],
        ),
        "open": nginx_factory(roots["open"], server_names=names("open")),
        "none": nginx_factory(roots["none"], server_names=names("none")),
    }
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(
        LAB_INVENTORY
        + "".join(
            _mirror(f"{n}.example", web.base_url, f"{n.title()} Admin <{n}@example.org>")
            for n, web in webs.items()
        )
    )
    page, metrics = tmp_path / "www" / "index.html", tmp_path / "metrics" / "pushsync.prom"
    config = tmp_path / "syncd.toml"
    config.write_text(f"""
inventory = "{inventory}"
state = "{tmp_path / "state.sqlite"}"
source_tree = "{source}"
[monitor]
lagging_grace_h = 1
status_page = "{page}"
metrics = "{metrics}"
[monitor.smtp]
host = "{smtp_sink.host}"
port = {smtp_sink.port}
sender = "monitor@example.org"
""")
    first = _run(config)
    assert {m["name"]: m["state"] for m in first["mirrors"]} == dict.fromkeys(
        ("locked.example", "open.example", "none.example"), "fresh"
    )
    [mail] = smtp_sink.messages
    assert mail["To"] == "Open Admin <open@example.org>"
    assert (
        str(mail["Subject"]) == "[ClamAV mirror] open.example: /local_stats/ is open to the world"
    )
    assert "protect /local_stats/ with a login and password" in mail.get_content()
    # asked without credentials: no Authorization header reached any server
    for web in webs.values():
        asked = [ln for ln in web.access_log.read_text().splitlines() if "/local_stats/" in ln]
        assert len(asked) == 1 and " - - [" in asked[0]

    _run(config)  # nothing changed: no second mail
    assert len(smtp_sink.messages) == 1

    doc = json.loads((page.parent / "status.json").read_text())
    verdicts = {m["name"]: m["local_stats"]["verdict"] for m in doc["mirrors"]}
    assert verdicts == {
        "locked.example": "protected",
        "open.example": "open",
        "none.example": "none",
    }
    text = metrics.read_text()
    assert 'pushsync_mirror_local_stats{mirror="open.example",verdict="open"} 1' in text
    assert 'pushsync_mirror_local_stats{mirror="locked.example",verdict="protected"} 1' in text
    assert "/local_stats/: open" in (page.parent / "mirrors" / "open.example.html").read_text()


def test_an_open_local_stats_warns_once_until_it_is_fixed(tmp_path: Path) -> None:
    """Open warns; open again, or an answer that cannot tell (a timeout), does not; fixed
    (401) then open again warns again."""
    conn = open_db(tmp_path / "state.sqlite")
    store = TrafficStore(conn)
    seen = ["open", "open", "unclear", "open", "protected", "unclear", "open", "none", "open"]
    warned = [store.save_local_stats("m", float(i), v, "d") for i, v in enumerate(seen)]
    assert warned == [True, False, False, False, False, False, True, False, True]
    row = store.local_stats()["m"]
    assert (row.verdict, row.since) == ("open", 8.0)
    conn.close()
