"""The demo: a real publish on this machine, on loopback only (``scripts/demo``).

It builds a release of synthetic CVDs, serves it from two real rsync daemons (rsync1, rsync2),
starts a fleet of mirrors that are real OpenSSH sshd instances forcing the real
``clam-clientsync`` (the zipapp, run by the system's python3 as a mirror runs it) into their own
DocumentRoots served by nginx, then runs ``syncd publish`` against them and shows the record.
Everything it started is stopped on the way out, also on Ctrl-C.

    python -m devtools.demo [--workdir DIR] [--mirrors N] [--simulated N] [--keep]

The fleet is assembled from the development harness (``devtools/harness``), so the demo runs
from a source checkout of pushsync (``scripts/demo``), not from the installed wheel.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from devtools.harness import account, cvd, simfleet, sshkeys
from devtools.harness.client import (
    SOURCE_NAMES,
    build_client_zipapp,
    client_command,
    client_config,
    mirror_home,
)
from devtools.harness.documents import LAB_INVENTORY, inventory_block
from devtools.harness.nginx import Nginx
from devtools.harness.rsyncd import RsyncDaemon
from devtools.harness.sshd import Sshd, forced_command_line

RELEASE = {"daily": 28034, "main": 62, "bytecode": 335}
COUNTRIES = ("PL", "DE", "FR", "NL", "US", "BR", "JP", "ZA")


class DemoError(RuntimeError):
    """The demo cannot run here; the message says why and what to do."""


@dataclass
class DemoMirror:
    name: str
    country: str
    docroot: Path
    sshd: Sshd
    web: Nginx


def inventory_toml(mirrors: list[DemoMirror]) -> str:
    """Return the inventory TOML for the demo fleet (a lab: its mirrors are on loopback)."""
    return LAB_INVENTORY + "\n".join(
        inventory_block(
            {
                "name": m.name,
                "host": m.sshd.host,
                "port": m.sshd.port,
                "user": m.sshd.account.name,
                "country": m.country,
                "admins": [f"Demo Admin <admin@{m.name}>"],
                "host_keys": [m.sshd.host_key_line],
                "http": m.web.base_url,
            }
        )
        for m in mirrors
    )


def _start_mirror(
    stack: ExitStack,
    base: Path,
    index: int,
    *,
    command: list[str],
    pusher_public: str,
    sources: tuple[RsyncDaemon, RsyncDaemon],
) -> DemoMirror:
    name = f"mirror{index + 1}.demo.test"
    rsync1, rsync2 = sources
    owner = account.mirror_account()
    laid = mirror_home(
        base / "mirrors" / name,
        owner,
        command,
        SOURCE_NAMES[index % 2],
        lambda docroot, state: client_config(
            docroot,
            state,
            (rsync1.url, rsync2.url),
            rsync1.user,
            rsync1.password,
            comment="# clam-clientsync configuration (written by the pushsync demo)",
        ),
    )
    line = forced_command_line(pusher_public, laid.forced_command)
    server = stack.enter_context(Sshd(laid.home / "sshd", authorized_keys=[line], account=owner))
    web = stack.enter_context(Nginx(laid.home / "nginx", laid.docroot))
    return DemoMirror(name, COUNTRIES[index % len(COUNTRIES)], laid.docroot, server, web)


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
    sim = base / "simulated"
    simfleet.make(sim, n, 7, 0.15, (5.0, 60.0), (0.05, 0.5))
    config = sim / "syncd.toml"
    config.write_text(
        "[policy]\nconnect_timeout = 3\nlogin_timeout = 3\ncommand_timeout = 5\n"
        "run_timeout = 60\nhttp_check = false\n"
    )
    _say(f"{n} simulated mirrors (asyncssh servers with latency and a 15 % fault mix)")
    with simfleet.Fleet(sim, 2):
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
            *simfleet.expect_args(),
        )
        _say("$ syncd publish (simulated fleet)")
        return subprocess.run(argv, check=False).returncode


def _after_publish(fleet: list[DemoMirror], config: Path) -> int:
    """What each mirror serves, one monitor pass, a heartbeat and the record; return 1 when
    the monitor does not find every mirror fresh or the heartbeat fails."""
    code = 0
    for m in fleet:
        daily = m.docroot / "daily.cvd"
        served = cvd.read_header(daily)["version"] if daily.exists() else "-"
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
    temporary = workdir is None
    base = (workdir or Path(tempfile.mkdtemp(prefix="pushsync-demo-"))).resolve()
    if not temporary and base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True, exist_ok=True)
    account.make_traversable(base)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with ExitStack() as stack:
            _say(f"working in {base}")
            source = base / "source"
            cvd.write_release(source, RELEASE["daily"], RELEASE["main"], RELEASE["bytecode"])
            rsync1 = stack.enter_context(RsyncDaemon(base / "rsyncd", source, name="rsync1"))
            rsync2 = stack.enter_context(RsyncDaemon(base / "rsyncd", source, name="rsync2"))
            _say(f"rsync1 {rsync1.url} and rsync2 {rsync2.url} serve daily {RELEASE['daily']}")
            pusher = sshkeys.generate_keypair(base / "pusher" / "id_ed25519", "pushsync-demo")
            command = client_command(build_client_zipapp(base / "bin"))
            fleet = [
                _start_mirror(
                    stack,
                    base,
                    i,
                    command=command,
                    pusher_public=pusher.public_line,
                    sources=(rsync1, rsync2),
                )
                for i in range(mirrors)
            ]
            user = fleet[0].sshd.account.name
            _say(
                f"{mirrors} mirrors: each a real sshd forcing clam-clientsync as {user!r}, "
                "and nginx serving its tree"
            )
            inventory = base / "inventory.toml"
            inventory.write_text(inventory_toml(fleet))
            config = _config(base, pusher.private, inventory, source)
            _say("$ syncd publish --config " + str(config))
            code = subprocess.run(
                _syncd("publish", "--config", str(config)), check=False
            ).returncode
            code = max(code, _after_publish(fleet, config))
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m devtools.demo",
        description="A real publish on this machine, loopback only (from a source checkout): "
        "two rsync daemons serve a release of synthetic CVDs; each mirror is a real sshd "
        "forcing the real clam-clientsync into its own tree, served by nginx; then syncd "
        "publish, the monitor's check and status page, and the record. Everything started is "
        "stopped at the end.",
    )
    ap.add_argument(
        "--workdir",
        type=Path,
        help="Where to build the fleet; emptied first, kept after "
        "(default: a temporary directory, removed after).",
    )
    ap.add_argument("--mirrors", type=int, default=8, help="How many real mirrors (1-64).")
    ap.add_argument(
        "--simulated",
        type=int,
        default=0,
        help="Then also publish to this many simulated mirrors with latency and faults (0-1000).",
    )
    ap.add_argument("--keep", action="store_true", help="Keep the temporary directory.")
    args = ap.parse_args(argv)
    try:
        return run_demo(args.workdir, args.mirrors, args.keep, args.simulated)
    except (DemoError, RuntimeError, OSError) as err:  # a server that would not start, a disk
        print(f"demo: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
