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
import time
from collections import Counter
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
from syncd.statuspage.site import page_name

RELEASE = {"daily": 28034, "main": 62, "bytecode": 335}
COUNTRIES = ("PL", "DE", "FR", "NL", "US", "BR", "JP", "ZA")
ROOT = Path(__file__).resolve().parent.parent
# Written into every working directory the demo makes; only a directory holding it is ever
# emptied by a later run.
MARKER = ".pushsync-demo"
MARKER_TEXT = (
    "Made by the pushsync demo (python -m devtools.demo, scripts/demo). The next demo run with "
    "this directory as --workdir replaces everything in it.\n"
)
SIM_SEED, SIM_FAULT_RATE = 7, 0.15


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


def prepare_workdir(workdir: Path) -> Path:
    """Return `workdir` resolved, made and marked as the demo's, emptied if an earlier demo
    made it; raise DemoError, touching nothing, for a directory the demo did not make (one that
    is neither new nor empty and holds no marker), or one that holds this checkout, the
    current directory or a home."""
    base = workdir.resolve()
    if base.exists() and not base.is_dir():
        raise DemoError(f"--workdir {base} is not a directory: give a new or empty directory")
    around = [Path("/"), ROOT, Path.cwd().resolve(), Path.home().resolve()]
    if any(place == base or place.is_relative_to(base) for place in around):
        raise DemoError(
            f"--workdir {base} holds this checkout, the current directory or a home: give a new "
            "or empty directory, such as demo-run"
        )
    entries = sorted(base.iterdir()) if base.exists() else []
    if entries and not (base / MARKER).is_file():
        raise DemoError(
            f"--workdir {base} is not empty and was not made by the demo (it has no {MARKER}): "
            "give a new or empty directory; nothing was deleted"
        )
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    base.mkdir(parents=True, exist_ok=True)
    (base / MARKER).write_text(MARKER_TEXT)
    return base


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


def _monitor(config: Path) -> dict[str, tuple[str, str]] | None:
    """Run one monitor pass; return each mirror's state and reason (None: no summary)."""
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
        return None
    if proc.returncode != 0:
        _say(f"the monitor exited {proc.returncode}")
        return None
    return {m["name"]: (m["state"], m["reason"]) for m in summary["mirrors"]}


def _all_fresh(config: Path, expected: int) -> int:
    """One monitor pass; say how many mirrors it found fresh; 1 unless all `expected` are."""
    states = _monitor(config)
    if states is None:
        return 1
    for name, (state, reason) in states.items():
        if state != "fresh":
            _say(f"{name} is {state}: {reason}")
    fresh = sum(state == "fresh" for state, _ in states.values())
    _say(f"the monitor finds {fresh} of {expected} mirrors fresh")
    return 0 if fresh == expected else 1


def _trouble(fleet: list[DemoMirror], config: Path, status: Path) -> int:
    """Make the last mirror's timestamp 30 hours old, as a mirror whose pushes stopped a day
    ago serves it; one more monitor pass must find that mirror old and the others fresh. Say
    where its page is; return 1 when the monitor sees otherwise."""
    victim = fleet[-1]
    _say(
        f"a mirror in trouble: {victim.name}'s timestamp set 30 hours back, as if its pushes "
        "had stopped a day ago"
    )
    # a new file renamed over the old: the served one shares its inode with the client's
    # staging copy (hard links), which must keep the true time
    stale = victim.docroot / "timestamp.demo"
    stale.write_text(f"{int(time.time()) - 30 * 3600}\n")
    stale.chmod(0o644)
    stale.replace(victim.docroot / "timestamp")
    _say("$ syncd monitor --once --no-mail --json")
    states = _monitor(config)
    if states is None:
        return 1
    state, reason = states.get(victim.name, ("missing", "not in the monitor's summary"))
    others = [n for n, (st, _) in states.items() if n != victim.name and st != "fresh"]
    _say(f"the monitor finds {victim.name} {state}: {reason}")
    _say(f"its page: {status / page_name(victim.name)} (the overview: {status / 'index.html'})")
    if state != "old" or others:
        _say(f"planned: {victim.name} old and every other mirror fresh; not what happened")
        return 1
    return 0


def _plan(sim: Path) -> dict[str, str]:
    """Each simulated mirror's planned outcome, from the fault drawn for it."""
    profiles = json.loads((sim / "profiles.json").read_text())
    return {p["name"]: simfleet.EXPECTED[p["fault"]] for p in profiles}


def _tally(outcomes: dict[str, str]) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(Counter(outcomes.values()).items()))


def _simulated(base: Path, n: int) -> int:
    """Publish to `n` simulated mirrors (devtools/harness/simfleet.py) with a fault mix; 0 when
    every mirror ends as its fault planned, 1 (naming the mirrors) otherwise."""
    sim = base / "simulated"
    simfleet.make(sim, n, SIM_SEED, SIM_FAULT_RATE, (5.0, 60.0), (0.05, 0.5))
    config = sim / "syncd.toml"
    config.write_text(
        "[policy]\nconnect_timeout = 3\nlogin_timeout = 3\ncommand_timeout = 5\n"
        "run_timeout = 60\nhttp_check = false\n"
    )
    plan = _plan(sim)
    faults = Counter(p["fault"] for p in json.loads((sim / "profiles.json").read_text()))
    mix = ", ".join(f"{k or 'no fault'} {v}" for k, v in sorted(faults.items(), key=str))
    _say(f"{n} simulated mirrors: asyncssh servers with latency and a planned fault mix ({mix})")
    _say(f"planned outcome: {_tally(plan)} (the summary below groups the failures by problem)")
    state = sim / "state.sqlite"
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
            str(state),
            "--json",
            *simfleet.expect_args(),
        )
        _say("$ syncd publish --json (simulated fleet)")
        proc = subprocess.run(argv, check=False, stdout=subprocess.PIPE, text=True)
    try:
        doc = json.loads(proc.stdout)
        got = {m["name"]: m["outcome"] for m in doc["mirrors"]}
    except (ValueError, KeyError, TypeError):
        _say(f"the simulated publish printed no result (exit {proc.returncode})")
        return 1
    _say(f"outcome: {_tally(got)} (syncd publish exits {proc.returncode}: not every mirror ok)")
    _say(
        f"the simulated run's record: {state} (syncd status --state {state}; "
        f"syncd runs show {doc.get('run_id', 'RUN')} --state {state})"
    )
    wrong = sorted(name for name, outcome in plan.items() if got.get(name) != outcome)
    if wrong:
        shown = ", ".join(f"{w} {got.get(w, 'missing')} (planned {plan[w]})" for w in wrong[:10])
        _say(f"{len(wrong)} simulated mirror(s) did not end as planned: {shown}")
        return 1
    _say("every simulated mirror ended as planned")
    return 0


def _after_publish(fleet: list[DemoMirror], config: Path) -> int:
    """What each mirror serves, one monitor pass, a heartbeat and the record; return 1 when
    the monitor does not find every mirror fresh or the heartbeat fails."""
    code = 0
    for m in fleet:
        daily = m.docroot / "daily.cvd"
        served = cvd.read_header(daily)["version"] if daily.exists() else "-"
        _say(f"{m.name} serves daily {served} at {m.web.base_url}/daily.cvd")
    _say("$ syncd monitor --once --no-mail --json")
    code = max(code, _all_fresh(config, len(fleet)))
    _say("$ syncd heartbeat --config " + str(config))
    heartbeat = subprocess.run(_syncd("heartbeat", "--config", str(config)), check=False)
    code = max(code, heartbeat.returncode)
    _say("$ syncd status")
    subprocess.run(_syncd("status", "--config", str(config)), check=False)
    if len(fleet) > 1:
        code = max(code, _trouble(fleet, config, config.parent / "status"))
    else:
        _say("one mirror only: no mirror in trouble is shown (give --mirrors 2 or more)")
    return code


def run_demo(workdir: Path | None, mirrors: int, keep: bool, simulated: int = 0) -> int:
    """Set up the fleet under `workdir`, publish to it, show the record; return the exit code.

    Every process it starts is stopped on the way out (also on Ctrl-C or SIGTERM); the working
    directory (record, status page, mirrors' trees) is kept for reading afterwards unless it
    was a temporary one and `keep` is false. A `workdir` is used only when it is new, empty or
    made by an earlier demo (see :func:`prepare_workdir`)."""
    if not 1 <= mirrors <= 64:
        raise DemoError(f"--mirrors must be between 1 and 64, not {mirrors}")
    if not 0 <= simulated <= 1000:
        raise DemoError(f"--simulated must be between 0 and 1000, not {simulated}")
    temporary = workdir is None
    base = prepare_workdir(workdir or Path(tempfile.mkdtemp(prefix="pushsync-demo-")))
    account.make_traversable(base)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with ExitStack() as stack:
            _say(f"working in {base}")
            source = base / "source"
            # as a real source serves it: the CVDs, the last 30 cdiffs and every .sign
            cvd.write_release_tree(source, RELEASE["daily"], RELEASE["main"], RELEASE["bytecode"])
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
        help="Where to build the fleet, kept after: a new or empty directory, or one an earlier "
        f"demo made (it holds {MARKER}; its contents are replaced). Any other directory is "
        "refused and left alone (default: a temporary directory, removed after).",
    )
    ap.add_argument("--mirrors", type=int, default=8, help="How many real mirrors (1-64).")
    ap.add_argument(
        "--simulated",
        type=int,
        default=0,
        help="Then also publish to this many simulated mirrors with latency and a planned fault "
        "mix (0-1000); the demo says the plan, and it succeeds when every mirror ends as planned.",
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
