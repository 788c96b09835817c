"""Fake mirror clients: small sh scripts forced by a real sshd, each producing a fault the real
clam-clientsync cannot (garbage, 10 MB, hanging, queued-then-ok via a state file). The
simulated fleet at scale is ``devtools/harness/simfleet.py``; both write their reports and
inventories with ``devtools/harness/documents.py``."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.harness.account import MirrorAccount, give_to, make_traversable
from devtools.harness.documents import inventory_block, report, sshd_mirror
from devtools.harness.sshd import Sshd, forced_command_line


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
        return inventory_block({**sshd_mirror(self.name, self.sshd), **override})


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
