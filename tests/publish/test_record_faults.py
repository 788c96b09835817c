"""The record can fail under a publish: a full disk (a real tmpfs, filled), or a write lock
another connection holds past the busy timeout. No push is cancelled, no traceback: the run
ends with one error line, its JSON, every outcome that could be written, and a state that says
it did not finish. And two ``--resume`` of one run never push at once."""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio

from devtools.harness.cvd import DEFAULT_VERSIONS
from devtools.harness.documents import LAB_INVENTORY
from devtools.harness.sshkeys import KeyPair
from syncd.errors import UsageError
from syncd.inventory.model import parse_inventory
from syncd.publish.config import Policy
from syncd.publish.job import PublishJob, publish_main
from syncd.publish.runlock import RunBusy, hold_run, shown_state
from syncd.publish.store import PublishStore
from syncd.sqlite import open_db
from tests.publish.fakes import FakeMirror, MirrorFactory
from tests.publish.fixtures import FAST_POLICY, Syncd, by_name

EXPECT = [f"--expect={db}={v}" for db, v in sorted(DEFAULT_VERSIONS.items())]


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (the tests run as root, as CI does)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, f"cannot mount a tmpfs (run as root): {done.stderr!r}"
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _wait(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def _outcome(db: Path, mirror: str) -> str | None:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            row = conn.execute(
                "SELECT outcome FROM publish_targets WHERE mirror = ?", (mirror,)
            ).fetchone()
    except sqlite3.Error:  # not made yet, or busy
        return None
    return str(row[0]) if row and row[0] else None


def _fill(directory: Path) -> Path:
    """Write a file in `directory` until the file system is full; return it."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as f:
        for _ in range(10_000):  # 2 MiB at 4 KiB a write, with room to spare
            try:
                f.write(b"\0" * 4096)
            except OSError as err:
                assert err.errno == errno.ENOSPC
                break
    return filler


def test_a_full_disk_ends_the_run_with_an_error_its_json_and_what_could_be_written(
    small_fs: Path, fake_mirror: MirrorFactory, syncd: Syncd
) -> None:
    fast = fake_mirror("fast.test", "ok")
    slow = [fake_mirror(f"slow{i}.test", "slow") for i in (1, 2)]  # answer after 3 s
    db = small_fs / "state.sqlite"
    syncd.inventory.write_text(LAB_INVENTORY + "".join(m.inventory_block() for m in [fast, *slow]))
    syncd.config.write_text(
        f'key = "{syncd.key}"\ninventory = "{syncd.inventory}"\nstate = "{db}"\n'
        + FAST_POLICY
        + "http_check = false\n"
    )
    filled: list[Path] = []

    def fill_once_fast_is_recorded() -> None:
        _wait(lambda: all(m.requests for m in slow) and _outcome(db, "fast.test") == "ok")
        filled.append(_fill(small_fs))

    filler = threading.Thread(target=fill_once_fast_is_recorded)
    filler.start()
    proc = syncd.run("publish", "--config", str(syncd.config), "--json", *EXPECT)
    filler.join()
    assert filled, "the disk was never filled"

    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("syncd: error:")]
    assert len(errors) == 1 and "database or disk is full" in errors[0], proc.stderr
    assert "--resume" in errors[0]
    doc = json.loads(proc.stdout)
    assert "database or disk is full" in doc["record_error"]
    # no push was cancelled: each mirror ends as its push did
    assert {n: m["outcome"] for n, m in by_name(doc).items()} == {
        "fast.test": "ok",
        "slow1.test": "ok",
        "slow2.test": "ok",
    }
    # what was written before the disk filled stays; the run does not look finished
    store = PublishStore(open_db(db))
    run_id = doc["run_id"]
    run = store.run(run_id)
    assert run is not None and run.state in ("failed", "running")
    assert shown_state(db, run_id, run.state) in ("failed", "interrupted")
    assert _outcome(db, "fast.test") == "ok"
    store.conn.close()
    shown = syncd.run("runs", "show", run_id, "--config", str(syncd.config), "--json")
    assert json.loads(shown.stdout)["state"] in ("failed", "interrupted"), shown.stderr

    # space freed: the resume pushes to the mirrors not recorded ok, and closes the run
    filled[0].unlink()
    before = len(fast.requests)
    proc = syncd.run("publish", "--config", str(syncd.config), "--json", "--resume", run_id)
    assert proc.returncode == 0, proc.stderr
    assert len(fast.requests) == before  # recorded ok: not pushed again
    assert all(len(m.requests) == 2 for m in slow)
    assert PublishStore(open_db(db)).run(run_id).state == "finished"  # type: ignore[union-attr]


def _hold_lock(db: Path, mirrors: list[FakeMirror], hold_s: float, held: dict[str, float]) -> None:
    _wait(lambda: all(m.requests for m in mirrors))
    conn = sqlite3.connect(str(db), isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    held["from"] = time.monotonic()
    time.sleep(hold_s)
    held["until"] = time.monotonic()
    conn.execute("COMMIT")
    conn.close()


def test_a_write_lock_held_past_the_busy_timeout_loses_writes_not_the_run(
    tmp_path: Path, fake_mirror: MirrorFactory, keypair: KeyPair
) -> None:
    fleet = [fake_mirror(f"slow{i}.test", "slow") for i in (1, 2)]  # answer after 3 s
    db = tmp_path / "state.sqlite"
    PublishStore(open_db(db)).conn.close()
    job = PublishJob(
        key=keypair.private,
        state=db,
        inventory=parse_inventory(LAB_INVENTORY + "".join(m.inventory_block() for m in fleet)),
        inventory_path="inventory.toml",
        policy=Policy(
            connect_timeout=3,
            login_timeout=3,
            command_timeout=6,
            run_timeout=30,
            max_attempts=1,
            http_check=False,
        ),
        expected=dict(DEFAULT_VERSIONS),
        record_timeout=1.0,
    )
    held: dict[str, float] = {}
    locker = threading.Thread(target=_hold_lock, args=(db, fleet, 8.0, held))
    locker.start()
    started = time.monotonic()
    outcome = trio.run(functools.partial(publish_main, job, None, handle_signals=False))
    took = time.monotonic() - started
    locker.join()

    assert {r.name: r.outcome.value for r in outcome.results} == {
        "slow1.test": "ok",
        "slow2.test": "ok",
    }
    assert outcome.record_error is not None and "database is locked" in outcome.record_error
    assert took < held["until"] - started, "the run waited for the lock"
    store = PublishStore(open_db(db))
    run = store.run(outcome.run_id)
    assert run is not None and run.state == "running"  # its last write could not be made ...
    assert shown_state(db, outcome.run_id, run.state) == "interrupted"  # ... and nobody runs it


def test_two_resumes_of_one_run_never_push_at_once(
    tmp_path: Path, fake_mirror: MirrorFactory, syncd: Syncd
) -> None:
    hang = fake_mirror("hang.test", "hang")  # never answers: each attempt takes 4 s
    syncd.write(
        hang.inventory_block(),
        FAST_POLICY.replace("max_attempts = 3", "max_attempts = 1") + "http_check = false\n",
    )
    code, doc, err = syncd.publish(*EXPECT)
    assert code == 1 and by_name(doc)["hang.test"]["outcome"] == "timeout", err
    run_id = doc["run_id"]

    # the resumes wait up to 60 s for the hanging mirror: the first is alive throughout
    syncd.write(
        hang.inventory_block(),
        FAST_POLICY.replace("max_attempts = 3", "max_attempts = 1")
        .replace("command_timeout = 4", "command_timeout = 60")
        .replace("run_timeout = 20", "run_timeout = 90")
        + "http_check = false\n",
    )
    first = syncd.popen("publish", "--config", str(syncd.config), "--resume", run_id)
    try:
        _wait(lambda: len(hang.requests) == 2)  # the first resume is pushing
        second = syncd.run("publish", "--config", str(syncd.config), "--resume", run_id)
        assert second.returncode == 75, second.stderr
        assert second.stderr.strip().splitlines() == [
            f"syncd: run {run_id} is being published by pid {first.pid}: wait for it to end "
            f"(see 'syncd runs show {run_id}')"
        ]
        assert len(hang.requests) == 2  # the second pushed nothing
        shown = syncd.run("runs", "show", run_id, "--config", str(syncd.config))
        assert f"run {run_id}: running" in shown.stdout, shown.stdout
        assert first.poll() is None
    finally:
        first.terminate()  # SIGTERM: the first cancels cleanly and closes the run
        first.communicate(timeout=60)
    shown = syncd.run("runs", "show", run_id, "--config", str(syncd.config))
    assert f"run {run_id}: cancelled" in shown.stdout, shown.stdout
    # the first ended: its lock is gone, the run can be resumed again
    with hold_run(syncd.state, run_id), pytest.raises(RunBusy), hold_run(syncd.state, run_id):
        pass


def test_a_run_id_that_names_a_path_elsewhere_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "deep" / "state.sqlite"
    db.parent.mkdir()
    with pytest.raises(UsageError, match="must match"), hold_run(db, "../../evil"):
        pass
    assert not (tmp_path / "evil.lock").exists() and not list(tmp_path.glob("*.lock"))
    assert shown_state(db, "../../evil", "running") == "interrupted"
