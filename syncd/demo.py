"""``syncd demo``: a real publish on this machine, on loopback only.

It builds a release of synthetic CVDs, serves it from two real rsync daemons (rsync1, rsync2),
starts a fleet of mirrors that are real OpenSSH sshd instances forcing the real
``clam-clientsync`` (the zipapp, run by the system's python3 as a mirror runs it) into their own
DocumentRoots served by nginx, then runs ``syncd publish`` against them and shows the record.
Everything it started is stopped on the way out, also on Ctrl-C.

The fleet is assembled from the test harness (``tests/harness``), so the demo runs from a source
checkout of pushsync.
"""

from __future__ import annotations

import importlib
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
    if not (root / "tests" / "harness" / "__init__.py").exists():
        raise DemoError(
            "syncd demo runs from a source checkout of pushsync (tests/harness is missing): "
            "clone the repository and run scripts/demo"
        )
    return root


def _harness() -> types.SimpleNamespace:
    root = str(repo_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    names = ("account", "client", "cvd", "nginx", "rsyncd", "sshd", "sshkeys")
    return types.SimpleNamespace(
        **{n: importlib.import_module(f"tests.harness.{n}") for n in names}
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


def run_demo(workdir: Path | None, mirrors: int, keep: bool) -> int:
    """Set up the fleet under `workdir`, publish to it, show the record; return the exit code."""
    if not 1 <= mirrors <= 64:
        raise DemoError(f"--mirrors must be between 1 and 64, not {mirrors}")
    h = _harness()
    base = workdir or Path(tempfile.mkdtemp(prefix="pushsync-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    h.account.make_traversable(base)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with ExitStack() as stack:
            print(f"demo: working in {base}", flush=True)
            source = base / "source"
            h.cvd.write_release(source, **RELEASE)
            rsync1 = stack.enter_context(
                h.rsyncd.RsyncDaemon(base / "rsyncd", source, name="rsync1")
            )
            rsync2 = stack.enter_context(
                h.rsyncd.RsyncDaemon(base / "rsyncd", source, name="rsync2")
            )
            print(f"demo: rsync1 {rsync1.url}, rsync2 {rsync2.url} serve daily {RELEASE['daily']}")
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
            print(f"demo: {mirrors} mirrors (sshd + nginx each) running as {account!r}")
            inventory = base / "inventory.toml"
            inventory.write_text(inventory_toml(fleet))
            state = base / "state.sqlite"
            publish = _syncd(
                "publish",
                "--inventory",
                str(inventory),
                "--key",
                str(pusher.private),
                "--state",
                str(state),
                "--source-tree",
                str(source),
            )
            print("demo: $ syncd " + " ".join(publish[3:]), flush=True)
            code = subprocess.run(publish, check=False).returncode
            subprocess.run(_syncd("status", "--state", str(state)), check=False)
            for m in fleet:
                served = (
                    h.cvd.read_header(m.docroot / "daily.cvd")
                    if (m.docroot / "daily.cvd").exists()
                    else {}
                )
                print(
                    f"demo: {m.name} serves daily {served.get('version', '-')} "
                    f"at {m.web.base_url}/daily.cvd"
                )
            print(f"demo: the record is {state}; stopping the fleet")
            return code
    except KeyboardInterrupt:
        print("demo: interrupted; everything it started has been stopped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        if not keep and workdir is None:
            shutil.rmtree(base, ignore_errors=True)
        elif keep:
            print(f"demo: kept {base}", file=sys.stderr)
