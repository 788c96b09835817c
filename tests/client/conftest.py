"""Fixtures of the mirror client tests: a mirror directory, its config, and a way to run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devtools.harness.cvd import corrupt_body, write_release
from devtools.harness.rsyncd import RsyncDaemon
from pushwire import report

ROOT = Path(__file__).resolve().parent.parent.parent
PY39 = Path("/root/.pyenv/versions/3.9.18/bin/python3.9")
R1, R2 = "rsync1.clamav.net", "rsync2.clamav.net"


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict[str, Any]:
        lines = [ln for ln in self.stdout.splitlines() if ln.strip()]
        assert len(lines) == 1, f"expected one JSON line, got {self.stdout!r}\n{self.stderr}"
        data = json.loads(lines[0])
        assert isinstance(data, dict)
        # the contract holds on every path, errors included
        missing = set(report.KEYS) - set(data)
        assert not missing, f"report lacks {missing}"
        assert data["report_version"] == 1
        assert data["status"] in ("ok", "queued", "failed", "rejected")
        return data


@dataclass
class Mirror:
    root: Path
    to: Path
    state: Path
    config: Path
    keys: dict[str, str] = field(default_factory=dict)

    def write_config(self, mode: int = 0o600, **keys: str | None) -> None:
        """Write the config from the defaults updated by `keys` (None removes a key)."""
        self.keys.update(keys)
        lines = ["# written by the test", "export TO=" + json.dumps(str(self.to))]
        lines += [f'{k}="{v}"' for k, v in self.keys.items() if v is not None and k != "TO"]
        self.config.write_text("\n".join(lines) + "\n")
        self.config.chmod(mode)

    def run(
        self,
        source: str = R1,
        command: str | None = None,
        *,
        argv: list[str] | None = None,
        python: str | None = None,
        timeout: float = 60,
        env: dict[str, str] | None = None,
    ) -> Result:
        full_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
        full_env.update(env or {})
        if command is not None:
            full_env["SSH_ORIGINAL_COMMAND"] = command
        args = argv if argv is not None else ["--config", str(self.config), source]
        done = subprocess.run(
            [python or sys.executable, "-m", "clientside", *args],
            cwd=ROOT,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def popen(self, source: str = R1, command: str | None = None) -> subprocess.Popen[str]:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
        if command is not None:
            env["SSH_ORIGINAL_COMMAND"] = command
        return subprocess.Popen(
            [sys.executable, "-m", "clientside", "--config", str(self.config), source],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def log_text(self) -> str:
        path = self.state / "clam-clientsync.log"
        return path.read_text() if path.exists() else ""

    def served(self) -> list[str]:
        return sorted(p.name for p in self.to.iterdir())


def make_mirror(tmp_path: Path, rsync_pair: tuple[RsyncDaemon, RsyncDaemon] | None) -> Mirror:
    root = tmp_path / "mirror"
    to = root / "public_html"
    to.mkdir(parents=True)
    (to / "local_logo.png").write_bytes(b"logo")
    mirror = Mirror(root, to, root / "var", root / "etc" / "clam-clientsync.conf")
    mirror.config.parent.mkdir()
    keys = {
        "MODULE": "clamavdb",
        "EXCLUDE": "--exclude local_*",
        "STATE_DIR": str(mirror.state),
        "TIMEOUT": "20",
        "CONTIMEOUT": "3",
        "DEADLINE": "60",
    }
    if rsync_pair is not None:
        r1, r2 = rsync_pair
        keys |= {
            "RSYNC_USER": r1.user,
            "RSYNC_PASSWORD": r1.password,
            "SOURCES": f"{R1}={r1.url} {R2}={r2.url}",
        }
    mirror.write_config(**keys)
    return mirror


@pytest.fixture
def mirror(tmp_path: Path, rsync_pair: tuple[RsyncDaemon, RsyncDaemon]) -> Iterator[Mirror]:
    """A mirror whose config points at rsync1/rsync2 (both serving ``source_tree``)."""
    yield make_mirror(tmp_path, rsync_pair)


@pytest.fixture
def bare_mirror(tmp_path: Path) -> Mirror:
    """A mirror config with no sources running (for tests where nothing may run)."""
    m = make_mirror(tmp_path, None)
    m.write_config(SOURCES=f"{R1}=rsync://127.0.0.1:1 {R2}=rsync://127.0.0.1:2")
    return m


@contextmanager
def corrupt_at_rsync1_good_at_rsync2(
    tmp_path: Path, mirror: Mirror, source_tree: Path, daily: int
) -> Iterator[None]:
    """Make rsync1 serve release `daily` with a corrupt daily.cvd, and R2 (a daemon of its own)
    the same release whole, while the block runs."""
    other = tmp_path / "other"
    write_release(other, daily)
    write_release(source_tree, daily)
    corrupt_body(source_tree / "daily.cvd")
    with RsyncDaemon(tmp_path / "rsyncd3", other, name="rsync3") as r3:
        r1url = mirror.keys["SOURCES"].split()[0]
        mirror.write_config(SOURCES=f"{r1url} {R2}={r3.url}")
        yield


def stub_rsync(directory: Path, marker: Path, body: str = "") -> Path:
    """Write an executable 'rsync' recording its argv in `marker`, its environment beside."""
    script = directory / "stub-rsync"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then echo "rsync  version 3.4.1  protocol version 32"; '
        "exit 0; fi\n"
        f'printf "%s\\n" "$@" > "{marker}"\n'
        f'env > "{marker}.env"\n' + body + "exit 0\n"
    )
    script.chmod(0o755)
    return script


_bump = [0]


def fresh_mtime(*paths: Path) -> None:
    """Give `paths` a distinct mtime: rsync's quick check compares size and mtime only, and a
    test rewrites same-sized files within one second."""
    import time

    _bump[0] += 10
    when = time.time() + _bump[0]
    for p in paths:
        os.utime(p, (when, when))
