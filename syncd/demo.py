"""``syncd demo``: a real publish on this machine, on loopback only.

It builds a release of synthetic CVDs, serves it from two real rsync daemons (rsync1, rsync2),
starts a fleet of mirrors that are real OpenSSH sshd instances forcing the real
``clam-clientsync`` (the zipapp, run by the system's python3 as a mirror runs it) into their own
DocumentRoots served by nginx, then runs ``syncd publish`` against them and shows the record.
Everything it started is stopped on the way out, also on Ctrl-C.

The fleet is assembled from the test harness (``devtools/harness``), so the demo runs from a source
checkout of pushsync.
"""

from __future__ import annotations

import importlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import types
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOURCE_NAMES = ("rsync1.clamav.net", "rsync2.clamav.net")
RELEASE = {"daily": 28034, "main": 62, "bytecode": 335}
COUNTRIES = ("PL", "DE", "FR", "NL", "US", "BR", "JP", "ZA")


class DemoError(RuntimeError):
    """The demo cannot run here; the message says why and what to do."""


def repo_root() -> Path:
    """Return the source checkout holding this package; raise when not run from one."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "devtools" / "harness" / "__init__.py").exists():
        raise DemoError(
            "syncd demo runs from a source checkout of pushsync (devtools/harness is missing): "
            "clone the repository and run scripts/demo"
        )
    return root


def _harness() -> types.SimpleNamespace:
    root = str(repo_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    names = ("account", "client", "cvd", "nginx", "rsyncd", "sshd", "sshkeys")
    return types.SimpleNamespace(
        **{n: importlib.import_module(f"devtools.harness.{n}") for n in names}
    )


@dataclass
class DemoMirror:
    name: str
    country: str
    docroot: Path
    sshd: Any
    web: Any


def client_config(docroot: Path, state: Path, rsync1: Any, rsync2: Any) -> str:
    """Return a mirror's ``clam-clientsync.conf`` in the legacy KEY=VALUE form."""
    sources = f"{SOURCE_NAMES[0]}={rsync1.url} {SOURCE_NAMES[1]}={rsync2.url}"
    return "\n".join(
        [
            "# clam-clientsync configuration (written by syncd demo)",
            f"TO={docroot}",
            f"RSYNC_USER={rsync1.user}",
            f"RSYNC_PASSWORD={rsync1.password}",
            'MODULE="clamavdb"',
            'EXCLUDE="--exclude local_*"',
            f'SOURCES="{sources}"',
            f"STATE_DIR={state}",
            "",
        ]
    )


def inventory_toml(mirrors: list[DemoMirror]) -> str:
    """Return the inventory TOML for the demo fleet."""
    blocks = []
    for m in mirrors:
        blocks.append(
            "\n".join(
                [
                    "[[mirrors]]",
                    f'name = "{m.name}"',
                    f'host = "{m.sshd.host}"',
                    f"port = {m.sshd.port}",
                    f'user = "{m.sshd.account.name}"',
                    f'country = "{m.country}"',
                    f'admins = ["Demo Admin <admin@{m.name}>"]',
                    f'host_keys = ["{m.sshd.host_key_line}"]',
                    f'http = "{m.web.base_url}"',
                ]
            )
        )
    return "\n\n".join(blocks) + "\n"


def _start_mirror(
    h: types.SimpleNamespace,
    stack: ExitStack,
    base: Path,
    index: int,
    *,
    command: list[str],
    pusher_public: str,
    sources: tuple[Any, Any],
) -> DemoMirror:
    name = f"mirror{index + 1}.demo.test"
    home = base / "mirrors" / name
    docroot, state, etc = home / "htdocs", home / "state", home / "etc"
    for d in (docroot, state, etc):
        d.mkdir(parents=True, exist_ok=True)
    (docroot / "local_test").write_text("Success")
    conf = etc / "clam-clientsync.conf"
    conf.write_text(client_config(docroot, state, *sources))
    conf.chmod(0o600)
    account = h.account.mirror_account()
    h.account.give_to(account, home)
    h.account.make_traversable(docroot)
    forced = " ".join([*command, "--config", str(conf), SOURCE_NAMES[index % 2]])
    line = h.sshd.forced_command_line(pusher_public, forced)
    server = stack.enter_context(
        h.sshd.Sshd(home / "sshd", authorized_keys=[line], account=account)
    )
    web = stack.enter_context(h.nginx.Nginx(home / "nginx", docroot))
    return DemoMirror(name, COUNTRIES[index % len(COUNTRIES)], docroot, server, web)


def _syncd(*args: str) -> list[str]:
    return [sys.executable, "-m", "syncd", *args]


def _say(text: str) -> None:
    print(f"demo: {text}", flush=True)


def _config(base: Path, pusher: Path, inventory: Path, source: Path) -> Path:
    config = base / "syncd.toml"
    config.write_text(
        f'key = "{pusher}"\ninventory = "{inventory}"\nstate = "{base / "state.sqlite"}"\n'
        f'source_tree = "{source}"\n\n[policy]\nconnect_timeout = 5\nlogin_timeout = 5\n'
        "command_timeout = 60\nrun_timeout = 300\n\n[monitor]\n"
        f'status_page = "{base / "status" / "index.html"}"\n'
        f'metrics = "{base / "status" / "pushsync.prom"}"\n'
    )
    return config


def _monitor(config: Path, expected: int) -> int:
    """Run one monitor pass; say how many mirrors it found fresh; 1 unless all `expected` are."""
    proc = subprocess.run(
        _syncd("monitor", "--once", "--no-mail", "--json", "--config", str(config)),
        check=False,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        _say(f"the monitor printed no summary (exit {proc.returncode})")
        return 1
    fresh = [m for m in summary["mirrors"] if m["state"] == "fresh"]
    for m in summary["mirrors"]:
        if m["state"] != "fresh":
            _say(f"{m['name']} is {m['state']}: {m['reason']}")
    _say(f"the monitor finds {len(fresh)} of {expected} mirrors fresh")
    return 0 if proc.returncode == 0 and len(fresh) == expected else 1


def _simulated(base: Path, n: int) -> int:
    """Publish to `n` simulated mirrors (devtools/harness/simfleet.py) with a fault mix."""
    sys.path.insert(0, str(repo_root()))
    fleet = importlib.import_module("devtools.harness.simfleet")
    sim = base / "simulated"
    fleet.make(sim, n, 7, 0.15, (5.0, 60.0), (0.05, 0.5))
    config = sim / "syncd.toml"
    config.write_text(
        "[policy]\nconnect_timeout = 3\nlogin_timeout = 3\ncommand_timeout = 5\n"
        "run_timeout = 60\nhttp_check = false\n"
    )
    _say(f"{n} simulated mirrors (asyncssh servers with latency and a 15 % fault mix)")
    with fleet.Fleet(sim, 2):
        argv = _syncd(
            "publish",
            "--config",
            str(config),
            "--inventory",
            str(sim / "inventory.toml"),
            "--key",
            str(sim / "pusher_ed25519"),
            "--state",
            str(sim / "state.sqlite"),
            "--expect",
            "daily=28034",
            "--expect",
            "main=62",
            "--expect",
            "bytecode=335",
        )
        _say("$ syncd publish (simulated fleet)")
        return subprocess.run(argv, check=False).returncode


def _after_publish(h: types.SimpleNamespace, fleet: list[DemoMirror], config: Path) -> int:
    """What each mirror serves, one monitor pass, a heartbeat and the record; return 1 when
    the monitor does not find every mirror fresh or the heartbeat fails."""
    code = 0
    for m in fleet:
        daily = m.docroot / "daily.cvd"
        served = h.cvd.read_header(daily)["version"] if daily.exists() else "-"
        _say(f"{m.name} serves daily {served} at {m.web.base_url}/daily.cvd")
    _say("$ syncd monitor --once --no-mail --json")
    code = max(code, _monitor(config, len(fleet)))
    _say("$ syncd heartbeat --config " + str(config))
    heartbeat = subprocess.run(_syncd("heartbeat", "--config", str(config)), check=False)
    code = max(code, heartbeat.returncode)
    _say("$ syncd status")
    subprocess.run(_syncd("status", "--config", str(config)), check=False)
    return code


def run_demo(workdir: Path | None, mirrors: int, keep: bool, simulated: int = 0) -> int:
    """Set up the fleet under `workdir`, publish to it, show the record; return the exit code.

    Every process it starts is stopped on the way out (also on Ctrl-C or SIGTERM); the working
    directory (record, status page, mirrors' trees) is kept for reading afterwards unless it
    was a temporary one and `keep` is false."""
    if not 1 <= mirrors <= 64:
        raise DemoError(f"--mirrors must be between 1 and 64, not {mirrors}")
    if not 0 <= simulated <= 1000:
        raise DemoError(f"--simulated must be between 0 and 1000, not {simulated}")
    h = _harness()
    temporary = workdir is None
    base = (workdir or Path(tempfile.mkdtemp(prefix="pushsync-demo-"))).resolve()
    if not temporary and base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True, exist_ok=True)
    h.account.make_traversable(base)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with ExitStack() as stack:
            _say(f"working in {base}")
            source = base / "source"
            h.cvd.write_release(source, **RELEASE)
            rsync1 = stack.enter_context(
                h.rsyncd.RsyncDaemon(base / "rsyncd", source, name="rsync1")
            )
            rsync2 = stack.enter_context(
                h.rsyncd.RsyncDaemon(base / "rsyncd", source, name="rsync2")
            )
            _say(f"rsync1 {rsync1.url} and rsync2 {rsync2.url} serve daily {RELEASE['daily']}")
            pusher = h.sshkeys.generate_keypair(base / "pusher" / "id_ed25519", "pushsync-demo")
            command = h.client.client_command(h.client.build_client_zipapp(base / "bin"))
            fleet = [
                _start_mirror(
                    h,
                    stack,
                    base,
                    i,
                    command=command,
                    pusher_public=pusher.public_line,
                    sources=(rsync1, rsync2),
                )
                for i in range(mirrors)
            ]
            account = fleet[0].sshd.account.name
            _say(
                f"{mirrors} mirrors: each a real sshd forcing clam-clientsync as {account!r}, "
                "and nginx serving its tree"
            )
            inventory = base / "inventory.toml"
            inventory.write_text(inventory_toml(fleet))
            config = _config(base, pusher.private, inventory, source)
            _say("$ syncd publish --config " + str(config))
            code = subprocess.run(
                _syncd("publish", "--config", str(config)), check=False
            ).returncode
            code = max(code, _after_publish(h, fleet, config))
            if simulated:
                code = max(code, _simulated(base, simulated))
            _say(
                f"stopping the fleet; the record is {base / 'state.sqlite'}, the status page "
                f"{base / 'status' / 'index.html'}"
            )
            return code
    except KeyboardInterrupt:
        print("demo: interrupted; everything it started has been stopped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        if temporary and not keep:
            shutil.rmtree(base, ignore_errors=True)
