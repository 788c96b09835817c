"""Fake mirror clients: small sh scripts forced by a real sshd, each producing a fault the real
clam-clientsync cannot (garbage, 10 MB, hanging, queued-then-ok via a state file)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.harness.account import MirrorAccount, give_to, make_traversable
from devtools.harness.cvd import DEFAULT_VERSIONS
from devtools.harness.sshd import Sshd, forced_command_line


def report(status: str = "ok", versions: dict[str, int] | None = None, **extra: Any) -> str:
    """A valid client report (contract keys), as JSON text."""
    versions = DEFAULT_VERSIONS if versions is None else versions
    doc: dict[str, Any] = {
        "report_version": 1,
        "status": status,
        "verb": "sync",
        "source_requested": "rsync1.clamav.net",
        "source_used": "rsync1.clamav.net",
        "attempts": [],
        "started_at": "2026-11-25T14:00:00Z",
        "finished_at": "2026-11-25T14:00:01Z",
        "duration_s": 1.0,
        "files_transferred": 3,
        "bytes_transferred": 6000,
        "files_deleted": 0,
        "databases": {
            db: {"version": v, "build_time": "x", "signatures": 1000, "md5_ok": True}
            for db, v in versions.items()
        },
        "error": None,
        "client_version": "fake-1",
    }
    doc.update(extra)
    return json.dumps(doc)


def _heredoc(text: str) -> str:
    return f"cat <<'__REPORT__'\n{text}\n__REPORT__\n"


# Each behaviour is the body of an sh script; $STATE is a directory the mirror account owns.
BEHAVIOURS: dict[str, str] = {
    "ok": _heredoc(report()) + "exit 0\n",
    "garbage": "echo 'Welcome to my mirror! <html>'\necho '\x1b[31mnot json\x1b[0m'\nexit 0\n",
    "spew": "head -c 10000000 /dev/zero | tr '\\000' x\nexit 0\n",
    "hang": 'echo $$ >> "$STATE/pids"\nexec sleep 30\n',
    "slow": 'echo $$ >> "$STATE/pids"\nsleep 3\n' + _heredoc(report()) + "exit 0\n",
    "rejected": _heredoc(
        report("rejected", {}, error={"kind": "usage", "message": "unknown option"})
    )
    + "exit 64\n",
    "config": _heredoc(report("failed", {}, error={"kind": "config", "message": "TO unset"}))
    + "exit 78\n",
    # first sync: temporary failure (exit 75); later: ok
    "flaky": (
        'if [ ! -e "$STATE/flaky" ]; then touch "$STATE/flaky"\n'
        + _heredoc(report("failed", {}, error={"kind": "busy", "message": "lock held"}))
        + "exit 75\nfi\n"
        + _heredoc(report())
        + "exit 0\n"
    ),
    # sync: queued; status: queued for the first poll, then ok with the release
    "queued": (
        'case "$SSH_ORIGINAL_COMMAND" in\n'
        "sync*)\n"
        + _heredoc(report("queued", {"daily": 28000, "main": 62, "bytecode": 335}))
        + "exit 0;;\n"
        "status*)\n"
        'if [ ! -e "$STATE/polled" ]; then touch "$STATE/polled"\n'
        + _heredoc(report("queued", {"daily": 28000, "main": 62, "bytecode": 335}))
        + "exit 0\nfi\n"
        + _heredoc(report(verb="status"))
        + "exit 0;;\n"
        "esac\nexit 64\n"
    ),
}


@dataclass
class FakeMirror:
    name: str
    sshd: Sshd
    state: Path

    @property
    def requests(self) -> list[str]:
        log = self.state / "requests"
        return log.read_text().splitlines() if log.exists() else []

    def inventory_block(self, **override: Any) -> str:
        fields: dict[str, Any] = {
            "name": self.name,
            "host": self.sshd.host,
            "port": self.sshd.port,
            "user": self.sshd.account.name,
            "country": "PL",
            "admins": [f"Admin <admin@{self.name}>"],
            "host_keys": [self.sshd.host_key_line],
        }
        fields.update(override)
        lines = ["[[mirrors]]"] + [f"{k} = {json.dumps(v)}" for k, v in fields.items()]
        return "\n".join(lines) + "\n"


def write_script(directory: Path, account: MirrorAccount, behaviour: str) -> tuple[Path, Path]:
    """Write the fake client for `behaviour`; return (script, state dir)."""
    directory.mkdir(parents=True, exist_ok=True)
    state = directory / "state"
    state.mkdir(exist_ok=True)
    script = directory / "client.sh"
    script.write_text(
        "#!/bin/sh\n"
        f"STATE={state}\n"
        'printf "%s\\n" "$SSH_ORIGINAL_COMMAND" >> "$STATE/requests"\n' + BEHAVIOURS[behaviour]
    )
    script.chmod(0o755)
    give_to(account, state)
    os.chmod(state, 0o777)
    make_traversable(script)
    return script, state


MirrorFactory = Callable[..., FakeMirror]


def fake_fleet(
    tmp_path: Path,
    sshd_factory: Callable[..., Sshd],
    account: MirrorAccount,
    public_line: str,
) -> Iterator[MirrorFactory]:
    def start(name: str, behaviour: str) -> FakeMirror:
        script, state = write_script(tmp_path / "fake" / name, account, behaviour)
        line = forced_command_line(public_line, f"/bin/sh {script}")
        server = sshd_factory(authorized_keys=[line])
        return FakeMirror(name, server, state)

    yield start
    kill_recorded(tmp_path / "fake")


def kill_recorded(root: Path) -> None:
    """Kill what fake clients left running (sshd cannot signal a forced command for us)."""
    for pids in root.glob("*/state/pids"):
        for pid in pids.read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
