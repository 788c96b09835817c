"""Run the mirror client as a mirror runs it: the zipapp, under the system's Python.

The project's virtual environment lives under the developer's (or root's) home, which the
mirror account usually cannot enter; mirrors run ``clam-clientsync.pyz`` with the distribution's
``python3`` instead, and so do the tests that go through sshd.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devtools.harness.account import MirrorAccount, give_to, make_traversable

ROOT = Path(__file__).resolve().parent.parent.parent
SOURCE_NAMES = ("rsync1.clamav.net", "rsync2.clamav.net")


def system_python() -> str:
    """Return the distribution's python3 (what a mirror has), falling back to ours."""
    for candidate in ("/usr/bin/python3", shutil.which("python3")):
        if candidate and Path(candidate).exists():
            return candidate
    return sys.executable


def build_zipapp(out: Path) -> Path:
    """Build ``clam-clientsync.pyz`` at `out` with ``scripts/build_zipapp.py``, the one builder
    (a release builds the same file the same way); return `out`."""
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_zipapp.py"), str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out


def build_client_zipapp(directory: Path) -> Path:
    """Build ``clam-clientsync.pyz`` into `directory` (made reachable by the mirror account)."""
    directory.mkdir(parents=True, exist_ok=True)
    out = build_zipapp(directory / "clam-clientsync.pyz")
    make_traversable(directory)
    return out


def client_command(pyz: Path) -> list[str]:
    """Return the argv prefix that runs the client zipapp in isolated mode."""
    return [system_python(), "-I", str(pyz)]


def client_config(
    docroot: Path,
    state: Path,
    urls: tuple[str, str],
    user: str,
    password: str,
    extra: dict[str, str] | None = None,
    *,
    comment: str | None = None,
) -> str:
    """Return a mirror's ``clam-clientsync.conf`` in the legacy KEY=VALUE form, its two sources
    at `urls`."""
    sources = f"{SOURCE_NAMES[0]}={urls[0]} {SOURCE_NAMES[1]}={urls[1]}"
    lines = [
        *([comment] if comment else []),
        f"TO={docroot}",
        f"RSYNC_USER={user}",
        f"RSYNC_PASSWORD={password}",
        'MODULE="clamavdb"',
        'EXCLUDE="--exclude local_*"',
        f'SOURCES="{sources}"',
        f"STATE_DIR={state}",
        *(f"{k}={v}" for k, v in (extra or {}).items()),
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class MirrorHome:
    """A mirror account's home as a mirror admin lays it out: the served tree, the client's
    state and config, and the forced command its sshd runs for the pusher key."""

    home: Path
    docroot: Path
    state: Path
    conf: Path
    forced_command: str


def mirror_home(
    home: Path,
    account: MirrorAccount,
    command: list[str],
    source: str,
    config: Callable[[Path, Path], str],
    *,
    docroot: Path | None = None,
) -> MirrorHome:
    """Lay out `home` (served tree `docroot`, default ``home/htdocs``, with ``local_test``;
    ``state``; ``etc/clam-clientsync.conf`` from ``config(docroot, state)``), hand it to
    `account`, and return it with the forced command that runs `command` for `source`."""
    docroot = docroot or home / "htdocs"
    state, etc = home / "state", home / "etc"
    for d in (docroot, state, etc):
        d.mkdir(parents=True, exist_ok=True)
    # whatever the umask: the client refuses what another user could change (StrictModes)
    for d, mode in ((home, 0o755), (docroot, 0o755), (etc, 0o755), (state, 0o700)):
        d.chmod(mode)
    (docroot / "local_test").write_text("Success")
    conf = etc / "clam-clientsync.conf"
    conf.write_text(config(docroot, state))
    conf.chmod(0o600)
    give_to(account, home)
    make_traversable(docroot)
    forced = " ".join([*command, "--config", str(conf), source])
    return MirrorHome(home, docroot, state, conf, forced)
