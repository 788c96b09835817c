"""The client always answers: whatever goes wrong, wherever (after and in the argument parsing),
stdout carries exactly one JSON report (``failed``, error kind ``internal``), the traceback goes
to stderr and the log file, and the exit code is the report's (1).

Each stage is broken in turn by replacing one function the client calls with one that raises
(in process, ``cli.main``); one case goes through a real sshd's forced command with a zipapp
whose entry breaks the state directory's check, then the publish. Proven: before the boundary
at the entry (``clientside.push.Reply``), every stage before the sync verb ended in a traceback
with an empty stdout (through sshd too); the sync verb's stages answered, but the traceback
reached neither stderr nor the log (the log's formatter dropped it).
"""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clientside.cli
import clientside.core.rsyncplan
import clientside.publish
import clientside.push
import clientside.statedir
import clientside.verbs.status
import clientside.verbs.sync
import clientside.verification
import pushwire.report
from devtools.harness.account import MirrorAccount, give_to, make_traversable
from devtools.harness.client import client_command
from devtools.harness.rsyncd import RsyncDaemon
from devtools.harness.sshd import Sshd, forced_command_line
from devtools.harness.sshkeys import KeyPair
from tests.client.conftest import R1, R2, Mirror, Result


class Injected(Exception):
    """The fault a test plants."""


def _raiser(exc: BaseException) -> Callable[..., Any]:
    def boom(*args: object, **kwargs: object) -> Any:
        raise exc

    return boom


def answer(mirror: Mirror, monkeypatch: pytest.MonkeyPatch, command: str | None) -> Result:
    """Run the client in this process as sshd would (``cli.main``), capturing its output."""
    if command is None:
        monkeypatch.delenv("SSH_ORIGINAL_COMMAND", raising=False)
    else:
        monkeypatch.setenv("SSH_ORIGINAL_COMMAND", command)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = clientside.cli.main(["--config", str(mirror.config), R1])
    return Result(rc, out.getvalue(), err.getvalue())


def assert_internal(res: Result, marker: str) -> dict[str, Any]:
    rep = res.report  # exactly one line, every contract key
    assert res.rc == 1, res
    assert rep["status"] == "failed"
    assert rep["error"]["kind"] == "internal" and rep["error"]["retryable"] is False
    assert marker in rep["error"]["message"]
    assert "Traceback (most recent call last)" in res.stderr
    assert marker in res.stderr
    return rep


# (what breaks, module, attribute, the request): before, in and after the config, each verb
STAGES = [
    ("parsing the command line", clientside.cli, "parse_args", "sync"),
    ("parsing the request", clientside.push, "parse_request", "sync"),
    ("loading the config", clientside.push, "load_config", "sync"),
    ("checking the state directory", clientside.statedir, "check_state_dir", "sync"),
    ("asking rsync its version", clientside.push, "rsync_version", "sync"),
    ("the version verb", clientside.core.rsyncplan, "version_warning", "version"),
    ("reading the last report", clientside.verbs.status, "last_report", "status"),
    ("describing the served tree", clientside.verbs.status, "served_databases", "status"),
    ("preparing staging", clientside.verbs.sync, "prepare_staging", "sync"),
]


@pytest.mark.parametrize(
    ("module", "name", "command"),
    [pytest.param(m, n, c, id=what) for what, m, n, c in STAGES],
)
def test_an_exception_before_rsync_still_answers(
    bare_mirror: Mirror,
    monkeypatch: pytest.MonkeyPatch,
    module: Any,
    name: str,
    command: str,
) -> None:
    monkeypatch.setattr(module, name, _raiser(Injected(f"planted in {name}")))
    rep = assert_internal(answer(bare_mirror, monkeypatch, command), f"planted in {name}")
    assert rep["error"]["message"].startswith("internal error: Injected: planted in")


@pytest.mark.parametrize(
    ("module", "name"),
    [
        (clientside.verbs.sync, "classify"),  # rsync has run
        (clientside.publish, "execute"),  # staging is verified
        (clientside.verification, "served_release_files"),  # TO is published
        (clientside.verbs.status, "save_report"),  # the report is written
    ],
)
def test_an_exception_in_a_sync_still_answers_and_leaves_the_mirror_usable(
    mirror: Mirror, monkeypatch: pytest.MonkeyPatch, module: Any, name: str
) -> None:
    monkeypatch.setattr(module, name, _raiser(Injected("planted late")))
    rep = assert_internal(answer(mirror, monkeypatch, "sync run-id=bug-1"), "planted late")
    assert rep["run_id"] == "bug-1" and rep["verb"] == "sync"
    assert "Traceback (most recent call last)" in mirror.log_text()
    monkeypatch.undo()
    # the lock was released, and the failure is what status shows (unless saving it broke)
    after = mirror.run(command="status").report
    if name != "save_report":
        assert after["error"]["kind"] == "internal" and after["run_id"] == "bug-1"
    again = mirror.run(command="sync run-id=after")
    assert again.rc == 0 and again.report["status"] == "ok", again


def test_a_report_that_cannot_be_rendered_still_answers(
    bare_mirror: Mirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even the report's own code breaking leaves a report with every contract key."""
    monkeypatch.setattr(pushwire.report, "render", _raiser(Injected("no render")))
    rep = assert_internal(answer(bare_mirror, monkeypatch, "version"), "no render")
    assert rep["client_version"] == clientside.__version__


def test_an_exception_after_the_answer_does_not_answer_twice(
    bare_mirror: Mirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = clientside.push.Reply.emit

    def emit_then_break(self: clientside.push.Reply, rep: pushwire.report.Report) -> int:
        real(self, rep)
        raise Injected("after the answer")

    monkeypatch.setattr(clientside.push.Reply, "emit", emit_then_break)
    res = answer(bare_mirror, monkeypatch, "version")
    assert res.report["status"] == "ok"  # one line: the answer already given
    assert res.rc == 0 and "after the answer" in res.stderr


def test_a_full_disk_anywhere_is_disk_full(
    bare_mirror: Mirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OSError of a full disk that nothing caught on its way (here: where the lock's mark
    is written) is ``disk_full``, not a bug."""
    full = OSError(28, "No space left on device", str(bare_mirror.state / "update-required"))
    monkeypatch.setattr(clientside.push, "rsync_version", _raiser(full))
    res = answer(bare_mirror, monkeypatch, "sync")
    rep = res.report
    assert res.rc == 1
    assert rep["error"] == {
        "kind": "disk_full",
        "message": f"{bare_mirror.state / 'update-required'}: No space left on device",
        "retryable": False,
    }


def test_where_the_answer_is_text_a_bug_is_one_line_on_stderr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--help`` answers in text: a bug there is one line on stderr, not a report."""
    monkeypatch.setattr("builtins.print", _raiser(Injected("no print")))
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = clientside.cli.main(["--help"])
    monkeypatch.undo()
    assert rc == 1 and out.getvalue() == ""
    assert "clam-clientsync: internal error: Injected: no print" in err.getvalue()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    message=st.text(max_size=3000),
    kind=st.sampled_from([Injected, ValueError, KeyError, RecursionError, UnicodeError]),
)
def test_any_exception_text_gives_one_json_report_without_the_secret(
    bare_mirror: Mirror, monkeypatch: pytest.MonkeyPatch, message: str, kind: type[Exception]
) -> None:
    password = "s3cret-in-the-message"
    bare_mirror.write_config(RSYNC_PASSWORD=password)
    exc = kind(f"{message}{password}{message}")
    with monkeypatch.context() as patch:
        patch.setattr(clientside.push, "rsync_version", _raiser(exc))
        res = answer(bare_mirror, patch, "sync")
    lines = res.stdout.splitlines()
    assert len(lines) == 1 and lines[0].isascii()
    rep = json.loads(lines[0])
    assert rep["error"]["kind"] == "internal" and res.rc == 1
    assert password not in res.stdout
    assert len(rep["error"]["message"]) <= clientside.push.MESSAGE_LIMIT + 80


# -- through sshd ---------------------------------------------------------------------------

FAULTY_MAIN = b"""import os, sys
import clientside.publish, clientside.statedir
def broken(*args, **kwargs):
    raise RuntimeError("broke on purpose")
command = os.environ.get("SSH_ORIGINAL_COMMAND", "")
if "run-id=early" in command:
    clientside.statedir.check_state_dir = broken
if "run-id=late" in command:
    clientside.publish.execute = broken
from clientside.cli import main
sys.exit(main())
"""


def faulty_zipapp(pyz: Path, out: Path) -> Path:
    """Return a copy of the client zipapp whose entry breaks the state directory's check
    (``run-id=early``) or the publish (``run-id=late``): the product itself has no fault
    hook."""
    with zipfile.ZipFile(pyz) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = FAULTY_MAIN if info.filename == "__main__.py" else src.read(info)
            dst.writestr(info, data)
    out.chmod(0o644)
    return out


def test_through_sshd_a_bug_mid_sync_answers_and_the_next_push_works(
    tmp_path: Path,
    rsync_pair: tuple[RsyncDaemon, RsyncDaemon],
    account: MirrorAccount,
    keypair: KeyPair,
    sshd_factory: Callable[..., Sshd],
    client_zipapp: Path,
) -> None:
    r1, r2 = rsync_pair
    base = tmp_path / "clamavdb"
    to, etc, var = base / "public_html", base / "etc", base / "var"
    for d in (to, etc, var):
        d.mkdir(parents=True)
    conf = etc / "clam-clientsync.conf"
    conf.write_text(
        f"TO={to}\nRSYNC_USER={r1.user}\nRSYNC_PASSWORD='{r1.password}'\nMODULE=clamavdb\n"
        f"STATE_DIR={var}\n"
        f'SOURCES="{R1}={r1.url} {R2}={r2.url}"\n'
    )
    conf.chmod(0o600)
    pyz = faulty_zipapp(client_zipapp, tmp_path / "faulty.pyz")
    give_to(account, base)
    make_traversable(base)
    make_traversable(pyz)
    python = client_command(pyz)
    line = forced_command_line(keypair.public_line, " ".join([*python, "--config", str(conf), R1]))
    sshd = sshd_factory(authorized_keys=[line])
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {sshd.host_key_line}\n")

    def ssh(command: str) -> subprocess.CompletedProcess[str]:
        argv = [
            "ssh", "-F", "/dev/null", "-i", str(keypair.private), "-p", str(sshd.port),
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
            f"{account.name}@127.0.0.1", command,
        ]  # fmt: skip
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=60, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    for run_id in ("early-1", "late-1"):
        bad = ssh(f"sync run-id={run_id}")
        assert bad.returncode == 1, bad.stdout + bad.stderr + sshd.log_text()[-2000:]
        lines = bad.stdout.splitlines()
        assert len(lines) == 1, bad.stdout + bad.stderr
        rep = json.loads(lines[0])
        assert rep["status"] == "failed" and rep["run_id"] == run_id
        assert rep["error"]["kind"] == "internal"
        assert "RuntimeError: broke on purpose" in rep["error"]["message"]
        assert r1.password not in bad.stdout + bad.stderr
        assert "Traceback (most recent call last)" in bad.stderr
    log = (var / "clam-clientsync.log").read_text()
    assert "Traceback (most recent call last)" in log and r1.password not in log
    status = ssh("status")
    assert json.loads(status.stdout)["run_id"] == "late-1"
    good = ssh("sync run-id=after-1")
    assert good.returncode == 0, good.stdout + good.stderr
    assert json.loads(good.stdout)["status"] == "ok"
    assert (to / "daily.cvd").exists()
