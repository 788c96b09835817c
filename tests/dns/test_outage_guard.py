"""The monitor acts on DNS, and doubts itself before it does.

Real parts: a BIND primary, three mirrors (nginx, each on its own loopback address), the real
``syncd dns push`` and ``syncd monitor --once`` as processes, an SMTP sink. The outage is real:
the monitor runs in a network namespace whose only way out is a veth to BIND and the SMTP
sink; the mirrors' loopback addresses are the namespace's own, where nothing listens.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.harness.documents import lab_inventory
from devtools.harness.named import Named
from devtools.harness.netns import NetNs, NetnsUnavailable
from devtools.harness.nginx import Nginx
from devtools.harness.ports import free_port
from devtools.harness.smtp import SmtpSink
from tests.dns.invariant import push_tree
from tests.dns.test_steps_bind import Zone

pytestmark = pytest.mark.slow

DAILY = 28040
MIRRORS = {"pl1": "127.0.32.1", "pl2": "127.0.32.2", "pl3": "127.0.32.3"}
DEFAULT_POOL = "127.0.32.99"


class Setup:
    def __init__(self, tmp: Path, ns: NetNs, named: Named, sink: SmtpSink, port: int) -> None:
        self.tmp, self.ns, self.named, self.sink, self.port = tmp, ns, named, sink, port
        self.docroots = {n: tmp / "mirrors" / n for n in MIRRORS}
        self.page, self.metrics = tmp / "site" / "index.html", tmp / "pushsync.prom"

    def config(self, *, outage_share: float = 0.5) -> Path:
        secret = self.tmp / "tsig.secret"
        path = self.tmp / f"syncd-{outage_share}.toml"
        path.write_text(f"""
inventory = "{self.tmp / "inventory.toml"}"
state = "{self.tmp / "state.sqlite"}"
source_tree = "{self.tmp / "source"}"
[monitor]
unreachable_after = 1
outage_share = {outage_share}
team = ["team@example.org"]
status_page = "{self.page}"
metrics = "{self.metrics}"
[monitor.smtp]
host = "{self.sink.host}"
port = {self.sink.port}
[dns]
server = "{self.ns.root_address}"
port = {self.named.port}
key_name = "{self.named.key_name}"
key_secret_file = "{secret}"
gate_share = 0.6
pool_ttl = 1
default_pool = ["{DEFAULT_POOL}"]
""")
        return path

    def syncd(
        self, *args: str, inside: bool = False, config: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "syncd", *args, "--config", str(config or self.config())]
        run = self.ns.run if inside else subprocess.run
        return run(argv, capture_output=True, text=True, timeout=180, check=False)

    def doubts(self) -> list[str]:
        return [str(m["Subject"]) for m in self.sink.messages if "suspects" in str(m["Subject"])]

    def outputs(self) -> tuple[str, dict[str, object], str]:
        """What the last pass wrote: the overview page, status.json's ``monitor`` and the
        value of ``pushsync_monitor_suspects_itself`` in the metrics."""
        monitor = json.loads((self.page.parent / "status.json").read_text())["monitor"]
        samples = [
            line.removeprefix("pushsync_monitor_suspects_itself ")
            for line in self.metrics.read_text().splitlines()
            if line.startswith("pushsync_monitor_suspects_itself ")
        ]
        assert len(samples) == 1, samples
        return self.page.read_text(), monitor, samples[0]

    def trusting(self) -> None:
        """The page, status.json and the metrics say the monitor trusts its checks."""
        page, monitor, metric = self.outputs()
        assert "suspects itself" not in page
        assert monitor == {"suspects_itself": False, "reason": None}
        assert metric == "0"


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    try:
        ns = NetNs().start()
    except NetnsUnavailable as err:
        pytest.skip(str(err))
    servers: list[Nginx] = []
    try:
        with (
            Named(tmp_path / "named", listen_on=[ns.root_address], default_ttl=1) as named,
            SmtpSink(host=ns.root_address) as sink,
        ):
            port = free_port()
            s = Setup(tmp_path, ns, named, sink, port)
            for name, address in MIRRORS.items():
                s.docroots[name].mkdir(parents=True)
                push_tree(s.docroots[name], DAILY)
                nginx = Nginx(tmp_path / "nginx" / name, s.docroots[name], port=port)
                nginx.host = address
                servers.append(nginx.start())
            (tmp_path / "tsig.secret").write_text(named.secret + "\n")
            (tmp_path / "tsig.secret").chmod(0o600)
            zone = Zone(tmp_path, named, {n: (a, "PL", True) for n, a in MIRRORS.items()})
            push_tree(tmp_path / "source", DAILY)
            (tmp_path / "inventory.toml").write_text(
                lab_inventory(
                    [
                        {"name": n, "host": a, "country": "PL", "http": f"http://{a}:{port}"}
                        | {"admins": ["Admin <admin@example.org>"]}
                        for n, a in MIRRORS.items()
                    ]
                )
            )
            zone.serve(DAILY, list(MIRRORS), _now())
            yield s
    finally:
        for server in servers:
            server.stop()
        ns.close()


def _now() -> float:
    import time

    return time.time()


def test_a_monitor_cut_off_from_the_mirrors_suspects_itself_and_leaves_dns_alone(
    setup: Setup,
) -> None:
    s = setup
    first = s.syncd("monitor", "--once", "--no-mail")  # from the root namespace: all fresh
    assert first.returncode == 0, first.stdout + first.stderr
    s.trusting()
    push = s.syncd("dns", "push")
    assert push.returncode == 0, push.stdout + push.stderr
    pool = sorted(MIRRORS.values())
    assert s.named.dig("db.pl", "A") == pool

    for _ in range(2):  # two passes cut off: DNS untouched, the team told once
        cut = s.syncd("monitor", "--once", "--json", inside=True)
        summary = json.loads(cut.stdout)
        assert summary["suspect"] and "3 of 3 mirrors failed their IPv4 check" in summary["suspect"]
        assert summary["dns"] is None
        assert s.named.dig("db.pl", "A") == pool
        # nothing judged on the suspect checks either: no mirror changed state, so the next
        # publish or 'syncd dns push' does not act on them (on the code before, they went
        # unreachable, and the next updater emptied the pools)
        assert summary["transitions"] == []
        assert {m["state"] for m in summary["mirrors"]} == {"fresh"}
        # and says so where the team looks: the page's banner, status.json, the metrics
        page, monitor, metric = s.outputs()
        assert (
            "<strong>The monitor suspects itself:</strong> 3 of 3 mirrors failed their IPv4 "
            "check at once" in page
        )
        assert monitor["suspects_itself"] is True
        assert "3 of 3 mirrors failed their IPv4 check" in str(monitor["reason"])
        assert metric == "1"
    assert s.doubts() == ["[ClamAV mirrors] the monitor suspects itself"]

    # reconnected: a pass that finds the mirrors again trusts its checks, and says so
    again = s.syncd("monitor", "--once", "--json")
    assert json.loads(again.stdout)["suspect"] is None, again.stderr
    assert s.named.dig("db.pl", "A") == pool
    s.trusting()

    # the control: the same pass with the guard off (outage_share 1.0) takes every mirror out
    # (the pools fall back to the default pool): the guard is what held DNS above
    loose = s.syncd("monitor", "--once", "--json", inside=True, config=s.config(outage_share=1.0))
    summary = json.loads(loose.stdout)
    assert summary["suspect"] is None and summary["dns"] is not None, loose.stderr
    assert s.named.dig("db.pl", "A") == [DEFAULT_POOL]

    # back on the network: the mirrors are fresh again ([monitor] recover_after: two good
    # passes), and go back into rotation
    for _ in range(2):
        back = s.syncd("monitor", "--once", "--json")
        assert json.loads(back.stdout)["suspect"] is None
    assert s.named.dig("db.pl", "A") == pool


def test_the_monitor_takes_a_stale_mirror_out_and_puts_it_back(setup: Setup) -> None:
    """A mirror whose tree goes back to an older release is out of every pool after the next
    pass, and back once it serves the announced release again; the TXT never moves. (On the
    code before, the monitor never touched DNS: pl2 stayed in db.pl.)"""
    s = setup
    assert s.syncd("monitor", "--once", "--no-mail").returncode == 0
    assert s.syncd("dns", "push").returncode == 0
    txt = s.named.dig("current.cvd", "TXT")
    push_tree(s.docroots["pl2"], DAILY - 1)
    for name in list(s.docroots["pl2"].iterdir()):
        if name.name == f"daily-{DAILY}.cdiff":
            name.unlink()
    stale = s.syncd("monitor", "--once", "--no-mail")
    assert s.named.dig("db.pl", "A") == ["127.0.32.1", "127.0.32.3"], stale.stdout + stale.stderr
    push_tree(s.docroots["pl2"], DAILY)
    fresh = s.syncd("monitor", "--once", "--no-mail")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert s.named.dig("db.pl", "A") == sorted(MIRRORS.values())
    assert s.named.dig("current.cvd", "TXT") == txt
