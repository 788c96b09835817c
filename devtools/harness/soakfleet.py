"""A seeded soak: repeated ``syncd publish`` runs to a small fleet of real mirrors (sshd forcing
the client zipapp, nginx serving its tree, two rsync daemons) with one random fault per round,
and every invariant checked by code after each round.

Topology (all loopback): syncd -> FaultProxy -> sshd -> clam-clientsync -> FaultProxy -> rsyncd.
Mirror 0's DocumentRoot sits on a 2 MB tmpfs when mounting is permitted (the disk-full fault).

Used by ``tests/faults`` (a few rounds) and ``python -m benchmarks.soak`` (many).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from devtools.harness.account import MirrorAccount, give_to, make_traversable, mirror_account
from devtools.harness.client import build_client_zipapp, client_command
from devtools.harness.cvd import build_cvd, write_timestamp
from devtools.harness.faultproxy import FaultProxy
from devtools.harness.faults import (
    ChurningFile,
    CvdReaders,
    ProcessTrigger,
    RsyncOverlap,
    cmdline,
    descendants,
    fill_disk,
    held_locks,
    open_fds,
    secret_hits,
    tiny_tmpfs,
    wait_no_leaks,
)
from devtools.harness.nginx import Nginx
from devtools.harness.rsyncd import RsyncDaemon
from devtools.harness.sshd import Sshd, forced_command_line
from devtools.harness.sshkeys import generate_keypair

ROOT = Path(__file__).resolve().parents[2]
SOURCE_NAMES = ("rsync1.clamav.net", "rsync2.clamav.net")
OUTCOMES = {"ok", "failed", "unreachable", "timeout", "auth_failed", "host_key_mismatch"}
OUTCOMES |= {"cancelled"}
PAYLOAD = 48 * 1024  # each CVD ~50 KB: the 2 MB tmpfs holds a few releases, not a filler
CLIENT_LIMITS = {"TIMEOUT": "4", "CONTIMEOUT": "3", "DEADLINE": "10", "MAX_ROUNDS": "3"}
POLICY = """
[policy]
connect_timeout = 2
login_timeout = 3
command_timeout = 14
run_timeout = 40
max_attempts = 2
backoff_initial = 0.2
backoff_max = 0.4
poll_initial = 0.3
poll_max = 0.6
http_timeout = 3
"""

FAULTS = (
    "none",
    "ssh_stall",
    "ssh_drop",
    "ssh_delay",
    "rsync_stall",
    "rsync_drop",
    "rsync_refuse",
    "kill_syncd",
    "stop_syncd",
    "kill_client",
    "stop_client",
    "kill_rsync",
    "kill_sshd",
    "kill_rsyncd",
    "stop_rsyncd",
    "churn_source",
    "disk_full",
    "double_publish",
)


@dataclass
class Mirror:
    name: str
    home: Path
    docroot: Path
    state: Path
    conf: Path
    sshd: Sshd
    proxy: FaultProxy
    web: Nginx
    keep_token: str


@dataclass
class RoundResult:
    number: int
    fault: str
    seconds: float
    run_id: str
    outcomes: dict[str, str]
    resumed: bool
    fired: str | None
    cvds_checked: int
    rsyncs_seen: int
    violations: list[str] = field(default_factory=list)


class SoakFleet:
    """Start `mirrors` real mirrors and the sources under `root`; ``close()`` stops all."""

    def __init__(self, root: Path, mirrors: int, seed: int, *, log: Callable[[str], None] = print):
        self.root, self.seed, self.log = root, seed, log
        self.rng = random.Random(seed)
        self.stack = contextlib.ExitStack()
        self.mirrors: list[Mirror] = []
        self.size = mirrors
        self.daily = 30000
        self.stamp = 0  # the source tree's last timestamp (unix seconds)
        self.tmpfs: Path | None = None
        self.tmpfs_error: str | None = None
        self.rounds: list[RoundResult] = []

    # -- setup ----------------------------------------------------------------------------

    def start(self) -> SoakFleet:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        # children of this process from before the fleet (another test's) are not ours to count
        self.foreign = descendants([os.getpid()])
        root = self.root
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o711)
        make_traversable(root)
        self.account: MirrorAccount = mirror_account()
        self.key = generate_keypair(root / "keys" / "pusher", "soak-pusher")
        self.password = "pw-" + secrets.token_hex(8)
        self.tree = root / "source"
        self.tree.mkdir()
        self._write_release(atomic=True)
        self.rsyncd = [
            self.stack.enter_context(
                RsyncDaemon(root / "rsyncd", self.tree, name=n, password=self.password)
            )
            for n in ("rsync1", "rsync2")
        ]
        self.rproxy = [
            self.stack.enter_context(FaultProxy("127.0.0.1", r.port)) for r in self.rsyncd
        ]
        self.pyz = build_client_zipapp(root / "client")
        for i in range(self.size):
            self.mirrors.append(self._mirror(i))
        self.syncd_dir = root / "syncd"
        self.syncd_dir.mkdir()
        (self.syncd_dir / "tmp").mkdir()
        self.inventory = self.syncd_dir / "inventory.toml"
        self.inventory.write_text("".join(self._inventory_block(m) for m in self.mirrors))
        self.config = self.syncd_dir / "syncd.toml"
        self.config.write_text(
            f'key = "{self.key.private}"\ninventory = "{self.inventory}"\n'
            f'state = "{self.syncd_dir / "state.sqlite"}"\n' + POLICY
        )

    def _mirror(self, i: int) -> Mirror:
        name = f"m{i}.soak.test"
        home = self.root / "mirrors" / name
        home.mkdir(parents=True)
        docroot = home / "htdocs"
        if i == 0:
            try:
                self.tmpfs = self.stack.enter_context(tiny_tmpfs(home / "disk", "2m"))
                docroot = self.tmpfs / "htdocs"
            except OSError as err:
                self.tmpfs_error = str(err)
        state, etc = home / "state", home / "etc"
        for d in (docroot, state, etc):
            d.mkdir(parents=True, exist_ok=True)
        (docroot / "local_test").write_text("Success")
        token = secrets.token_hex(8)
        (docroot / "local_keep.txt").write_text(token)
        conf = etc / "clam-clientsync.conf"
        urls = (
            f"rsync://127.0.0.1:{self.rproxy[0].port}",
            f"rsync://127.0.0.1:{self.rproxy[1].port}",
        )
        lines = [
            f"TO={docroot}",
            f"RSYNC_USER={self.rsyncd[0].user}",
            f"RSYNC_PASSWORD={self.password}",
            'MODULE="clamavdb"',
            'EXCLUDE="--exclude local_*"',
            f'SOURCES="{SOURCE_NAMES[0]}={urls[0]} {SOURCE_NAMES[1]}={urls[1]}"',
            f"STATE_DIR={state}",
            *(f"{k}={v}" for k, v in CLIENT_LIMITS.items()),
        ]
        conf.write_text("\n".join(lines) + "\n")
        conf.chmod(0o600)
        give_to(self.account, home)
        make_traversable(docroot)
        forced = " ".join([*client_command(self.pyz), "--config", str(conf), SOURCE_NAMES[i % 2]])
        sshd = self.stack.enter_context(
            Sshd(
                self.root / "sshd" / name,
                authorized_keys=[forced_command_line(self.key.public_line, forced)],
                account=self.account,
            )
        )
        proxy = self.stack.enter_context(FaultProxy("127.0.0.1", sshd.port))
        web = self.stack.enter_context(Nginx(self.root / "nginx" / name, docroot))
        return Mirror(name, home, docroot, state, conf, sshd, proxy, web, token)

    def _inventory_block(self, m: Mirror) -> str:
        fields: dict[str, Any] = {
            "name": m.name,
            "host": "127.0.0.1",
            "port": m.proxy.port,
            "user": self.account.name,
            "country": "PL",
            "admins": [f"Admin <admin@{m.name}>"],
            "host_keys": [m.sshd.host_key_line],
            "http": m.web.base_url,
        }
        return "[[mirrors]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())

    def _write_release(self, *, atomic: bool) -> dict[str, bytes]:
        files = {
            "daily": build_cvd("daily", self.daily, payload_size=PAYLOAD),
            "main": build_cvd("main", 62, payload_size=PAYLOAD),
            "bytecode": build_cvd("bytecode", 335, payload_size=1024),
        }
        if atomic:
            for db, data in files.items():
                tmp = self.root / f".{db}.cvd.new"
                tmp.write_bytes(data)
                os.replace(tmp, self.tree / f"{db}.cvd")
            # the real clock, and at least a second further on with every release
            self.stamp = max(int(time.time()), self.stamp + 1)
            write_timestamp(self.tree, self.stamp)
        return files

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._kill_strays()
        self.stack.close()

    def _kill_strays(self) -> None:
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if str(self.root) in cmdline(proc) and proc.pid != os.getpid():
                    # children first: an nginx master killed alone leaves its workers behind
                    for child in proc.children(recursive=True):
                        with contextlib.suppress(psutil.Error):
                            child.kill()
                    proc.kill()

    # -- one round ------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.mirrors]

    @property
    def server_pids(self) -> list[int]:
        pids = []
        for m in self.mirrors:
            pids += [m.sshd.pid or 0, *_nginx_pids(m.web)]
        pids += [_pid(r) for r in self.rsyncd]
        return [p for p in pids if p]

    def syncd(self, *args: str) -> subprocess.Popen[str]:
        env = {**os.environ, "COLUMNS": "200", "TMPDIR": str(self.syncd_dir / "tmp")}
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "syncd",
                "publish",
                "--config",
                str(self.config),
                "--json",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.syncd_dir,
            env=env,
        )

    def pick_fault(self, number: int, faults: tuple[str, ...]) -> str:
        if number < len(faults):  # the first pass covers every fault once, in seeded order
            if number == 0:
                self._order = list(faults)
                self.rng.shuffle(self._order)
            return self._order[number]
        return self.rng.choice(faults)

    def run_round(self, number: int, fault: str) -> RoundResult:
        started = time.monotonic()
        fds_before = open_fds()
        runs_before = self._run_ids()
        self.daily += 1
        self._write_release(atomic=True)
        victim = self.rng.choice(self.mirrors)
        delay = round(self.rng.uniform(0.0, 0.8), 2)
        trigger: ProcessTrigger | None = None
        filler: Path | None = None
        churn: ChurningFile | None = None
        setup_fault = fault
        if fault == "disk_full" and self.tmpfs is None:
            setup_fault = "none"  # labelled in the report: mounting is not permitted here
        proc: subprocess.Popen[str] | None = None
        twin: subprocess.Popen[str] | None = None
        twin_violations: list[str] = []
        churned: str | None = None
        try:
            with (
                CvdReaders([m.web.base_url for m in self.mirrors]) as readers,
                RsyncOverlap(self.root / "mirrors") as overlap,
            ):
                filler = self._arm(setup_fault, victim, delay)
                if setup_fault == "churn_source":
                    final = build_cvd("daily", self.daily, payload_size=PAYLOAD + 4096)
                    churn = ChurningFile(self.tree / "daily.cvd", final).__enter__()
                proc = self.syncd("--source-tree", str(self.tree))
                if setup_fault == "double_publish":  # a second operator, a cron overlap
                    time.sleep(delay)
                    twin = self.syncd("--source-tree", str(self.tree))
                trigger = self._trigger(setup_fault, victim, delay, proc)
                try:
                    out, err = proc.communicate(timeout=90)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    out, err = proc.communicate(timeout=10)
                    err += "\n[soak] syncd killed after 90 s"
                if trigger is not None:
                    trigger.stop()
                if churn is not None:
                    churn.__exit__(None, None, None)
                    churned = f"source daily.cvd rewritten in place {churn.rewrites} times"
                    churn = None
                if twin is not None:
                    tout, terr = twin.communicate(timeout=90)
                    tdoc = _json(tout)
                    if twin.returncode != 0 or not tdoc.get("run_id"):
                        twin_violations.append(
                            f"concurrent publish exit {twin.returncode}: {_outcomes(tdoc)}"
                            f" {terr[-600:]}"
                        )
                    else:
                        runs_before.add(tdoc["run_id"])
                        twin_violations += self._record(tdoc["run_id"], sorted(self.names))
        finally:
            if trigger is not None:
                trigger.stop()
            if churn is not None:
                churn.__exit__(None, None, None)
            for p in (proc, twin):
                if p is not None and p.poll() is None:
                    p.kill()
                    p.wait(10)
            self._heal(filler)
        first = _json(out)
        run_id = first.get("run_id") or self._new_run_id(runs_before)
        violations: list[str] = list(twin_violations)
        resumed = False
        final = first
        if run_id and (proc.returncode != 0 or not first):
            resumed = True
            done_before = self._attempts(run_id, only_ok=True)
            if fault == "kill_syncd" and self.rng.random() < 0.5:
                # the resume dies too (a second SIGKILL), and a third invocation finishes
                doomed = self.syncd("--resume", run_id)
                time.sleep(self.rng.uniform(0.3, 1.2))
                doomed.kill()
                dout, derr = doomed.communicate(timeout=10)
                out, err = out + dout, err + derr
            rproc = self.syncd("--resume", run_id)
            rout, rerr = rproc.communicate(timeout=90)
            out, err = out + rout, err + rerr
            final = _json(rout)
            self.last_resume = (rout, rerr)
            after = self._attempts(run_id, only_ok=False)
            for mirror, count in done_before.items():
                if after.get(mirror, 0) != count:
                    violations.append(
                        f"resume redid {mirror}, already ok in run {run_id}: attempts "
                        f"{count} -> {after.get(mirror, 0)}"
                    )
            if rproc.returncode != 0:
                violations.append(
                    f"resumed run {run_id} did not finish ok (exit {rproc.returncode}): "
                    f"{_outcomes(final)} {rerr[-400:]}"
                )
        elif not run_id and proc.returncode < 0:
            # killed before it recorded anything: nothing to resume, so publish afresh
            resumed = True
            rproc = self.syncd("--source-tree", str(self.tree))
            rout, rerr = rproc.communicate(timeout=90)
            out, err, final = out + rout, err + rerr, _json(rout)
            run_id = final.get("run_id")
            if rproc.returncode != 0:
                violations.append(f"fresh run after an early kill failed: {_outcomes(final)}")
        elif not run_id:
            violations.append(f"no run recorded; syncd exit {proc.returncode}: {err[-400:]}")
        violations += self.check_invariants(run_id, final, out + err, fds_before)
        violations += [f"reader got a bad CVD: {b}" for b in readers.bad]
        violations += [f"two rsyncs on one tree: {o}" for o in overlap.overlaps]
        result = RoundResult(
            number,
            fault if setup_fault == fault else f"{fault} (unavailable: {self.tmpfs_error})",
            round(time.monotonic() - started, 2),
            run_id or "",
            _outcomes(first),
            resumed,
            (trigger.fired if trigger else None)
            or (f"filled {filler}" if filler else None)
            or _twin(twin)
            or churned
            or self._network_evidence(setup_fault, victim),
            readers.checked,
            len(overlap.seen),
            violations,
        )
        self.rounds.append(result)
        return result

    def _network_evidence(self, fault: str, victim: Mirror) -> str | None:
        """What the fault proxy did this round (cumulative counters of the proxy at fault)."""
        if fault.startswith("ssh_"):
            st = victim.proxy.stats
            return f"{fault} on {victim.name}: accepted {st.accepted}, dropped {st.dropped}"
        if fault.startswith("rsync_"):
            st0, st1 = self.rproxy[0].stats, self.rproxy[1].stats
            return (
                f"{fault}: rsync1 proxy accepted {st0.accepted} dropped {st0.dropped} refused "
                f"{st0.refused}; rsync2 refused {st1.refused}"
            )
        return None

    def _arm(self, fault: str, victim: Mirror, delay: float) -> Path | None:
        if fault == "ssh_stall":
            victim.proxy.set("stall")
        elif fault == "ssh_drop":
            victim.proxy.set("drop", drop_after=self.rng.choice([0, 200, 2000, 6000]))
        elif fault == "ssh_delay":
            victim.proxy.set("pass", delay_s=0.08)
        elif fault == "rsync_stall":
            self.rproxy[0].set("stall")
        elif fault == "rsync_drop":
            self.rproxy[0].set("drop", drop_after=self.rng.choice([0, 100, 20000]))
        elif fault == "rsync_refuse":
            self.rproxy[self.rng.randrange(2)].set("refuse")
        elif fault in (
            "kill_client",
            "stop_client",
            "kill_rsync",
            "kill_rsyncd",
            "stop_rsyncd",
            "kill_syncd",
        ):
            for proxy in self.rproxy:  # a transfer that lasts: the kill lands mid-stream
                proxy.set("pass", rate_bps=250_000)
        elif fault == "disk_full" and self.tmpfs is not None:
            return fill_disk(self.tmpfs, leave=self.rng.choice([0, 4096, 60000]))
        return None

    def _trigger(
        self, fault: str, victim: Mirror, delay: float, proc: subprocess.Popen[str]
    ) -> ProcessTrigger | None:
        conf = str(victim.conf)
        mirrors = str(self.root / "mirrors")
        match: Callable[[psutil.Process], bool] | None = None
        sig = signal.SIGKILL
        if fault in ("kill_syncd", "stop_syncd"):
            # the moment: once `done` mirrors have a recorded outcome (0: the run is recorded)
            done = self.rng.randrange(len(self.mirrors) - 1) if fault == "kill_syncd" else 0
            state = self.syncd_dir / "state.sqlite"
            known = self._run_ids()

            def match(p: psutil.Process) -> bool:
                return p.pid == proc.pid and _progress(state, known) >= done

            delay /= 8
            if fault == "stop_syncd":
                sig = signal.SIGSTOP
        elif fault == "kill_client":
            delay /= 4  # a client lives about a second

            def match(p: psutil.Process) -> bool:
                return p.name().startswith("python") and conf in cmdline(p)

        elif fault == "stop_client":  # a client frozen for 2 s, well within syncd's deadline

            def match(p: psutil.Process) -> bool:
                return p.name().startswith("python") and conf in cmdline(p)

            sig, delay = signal.SIGSTOP, delay / 4
        elif fault == "kill_rsync":

            def match(p: psutil.Process) -> bool:
                return p.name() == "rsync" and mirrors in cmdline(p)

            delay /= 4
        elif fault == "kill_sshd":
            sshd_pid = victim.sshd.pid
            if self.rng.random() < 0.5:  # the listener
                match = _is_pid(sshd_pid or -1)
            else:  # the session serving this push

                def match(p: psutil.Process) -> bool:
                    return p.name() == "sshd" and p.ppid() == sshd_pid

        elif fault == "kill_rsyncd":
            r1 = _pid(self.rsyncd[0])

            def match(p: psutil.Process) -> bool:
                return p.name() == "rsync" and mirrors in cmdline(p)

            return ProcessTrigger(match, victim=r1, delay_s=delay / 4, timeout_s=20).start()
        elif fault == "stop_rsyncd":  # rsync1 frozen for 2.5 s: new pulls wait or fail over
            r1 = _pid(self.rsyncd[0])

            def match(p: psutil.Process) -> bool:
                return p.name() == "rsync" and mirrors in cmdline(p)

            trig = ProcessTrigger(match, sig=signal.SIGSTOP, victim=r1, stop_s=2.5, timeout_s=20)
            return trig.start()
        if match is None:
            return None
        stop_s = 2.0 if fault == "stop_client" else 1.5
        return ProcessTrigger(match, sig=sig, delay_s=delay, stop_s=stop_s, timeout_s=20).start()

    def _heal(self, filler: Path | None) -> None:
        for m in self.mirrors:
            m.proxy.set("pass", delay_s=0, drop_after=0, rate_bps=0)
            if m.sshd._proc is not None and m.sshd._proc.poll() is not None:
                m.sshd._proc = None
                m.sshd.start()
        for i, r in enumerate(self.rsyncd):
            self.rproxy[i].set("pass", delay_s=0, drop_after=0, rate_bps=0)
            if r._proc is not None and r._proc.poll() is not None:
                r._proc = None
                r.start()
        if filler is not None:
            filler.unlink(missing_ok=True)

    def _attempts(self, run_id: str, *, only_ok: bool) -> dict[str, int]:
        """Return mirror -> attempts recorded in `run_id` (only mirrors ok already, or all)."""
        with contextlib.closing(sqlite3.connect(self.syncd_dir / "state.sqlite", timeout=5)) as c:
            ok = {
                r[0]
                for r in c.execute(
                    "SELECT mirror FROM publish_targets WHERE run_id = ? AND outcome = 'ok'",
                    (run_id,),
                )
            }
            rows = c.execute(
                "SELECT mirror, count(*) FROM publish_attempts WHERE run_id = ? GROUP BY mirror",
                (run_id,),
            ).fetchall()
        return {m: n for m, n in rows if m in ok or not only_ok}

    def _run_ids(self) -> set[str]:
        db = self.syncd_dir / "state.sqlite"
        if not db.exists():
            return set()
        with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
            try:
                return {r[0] for r in conn.execute("SELECT run_id FROM publish_runs")}
            except sqlite3.OperationalError:
                return set()

    def _new_run_id(self, before: set[str]) -> str | None:
        """The run this round's syncd recorded before it died, if it got that far."""
        new = self._run_ids() - before
        if len(new) > 1:
            raise AssertionError(f"one publish recorded several runs: {sorted(new)}")
        return new.pop() if new else None

    # -- invariants -----------------------------------------------------------------------

    def check_invariants(
        self, run_id: str | None, doc: dict[str, Any], output: str, fds_before: int
    ) -> list[str]:
        v: list[str] = []
        names = sorted(m.name for m in self.mirrors)
        if run_id:
            v += self._record(run_id, names)
        if doc:
            got = [m.get("name") for m in doc.get("mirrors", [])]
            if sorted(got) != names:
                v.append(f"summary lists {got}, expected each of {names} once")
        for m in self.mirrors:
            if (m.docroot / "local_test").read_text() != "Success":
                v.append(f"{m.name}: local_test changed")
            keep = m.docroot / "local_keep.txt"
            if not keep.exists() or keep.read_text() != m.keep_token:
                v.append(f"{m.name}: local_keep.txt lost or changed")
            for path in m.docroot.rglob(".clam-clientsync-tmp.*"):
                v.append(f"{m.name}: temp file left: {path}")
        leaks = wait_no_leaks(self.root, [*self.server_pids, *self.foreign], timeout_s=15)
        v += [f"leaked process: {p}" for p in leaks]
        v += [f"lock still held: {p}" for p in held_locks(m.state / "lock" for m in self.mirrors)]
        v += [f"temp left by syncd: {p}" for p in (self.syncd_dir / "tmp").iterdir()]
        fds = open_fds()
        for _ in range(30):
            if fds <= fds_before:
                break
            time.sleep(0.1)
            fds = open_fds()
        if fds > fds_before:
            v.append(f"file descriptors of the test process: {fds_before} -> {fds}")
        v += self._secrets(output)
        v += self._served()
        return v

    def _record(self, run_id: str, names: list[str]) -> list[str]:
        v = []
        with contextlib.closing(sqlite3.connect(self.syncd_dir / "state.sqlite", timeout=5)) as c:
            rows = c.execute(
                "SELECT mirror, outcome FROM publish_targets WHERE run_id = ?", (run_id,)
            ).fetchall()
            (state,) = c.execute(
                "SELECT state FROM publish_runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        count = Counter(r[0] for r in rows)
        if sorted(count) != names or any(n != 1 for n in count.values()):
            v.append(f"run {run_id}: targets {dict(count)}, expected one row per {names}")
        for mirror, outcome in rows:
            if outcome not in OUTCOMES:
                v.append(f"run {run_id}: {mirror} has no final outcome ({outcome!r})")
        if state == "running":
            v.append(f"run {run_id} still marked running after syncd exited")
        return v

    def _secrets(self, output: str) -> list[str]:
        # the body's first lines are the same for every ed25519 key (magic, public key): the
        # lines after them carry the private half
        key_lines = self.key.private.read_text().splitlines()[1:-1]
        needles = [self.password, *(ln for ln in key_lines[2:] if len(ln) >= 24)]
        allowed = {self.key.private, self.rsyncd[0].secrets_path, self.rsyncd[1].secrets_path}
        allowed |= {m.conf for m in self.mirrors}
        roots = [self.root / d for d in ("mirrors", "syncd", "sshd", "nginx", "rsyncd")]
        return [
            f"secret found: {h}"
            for h in secret_hits(needles, roots, {"syncd output": output}, allowed)
        ]

    def _served(self) -> list[str]:
        """After the (resumed) run, every mirror serves at least this round's daily."""
        v = []
        with httpx.Client(trust_env=False, timeout=5) as client:
            for m in self.mirrors:
                resp = client.get(
                    f"{m.web.base_url}/daily.cvd",
                    headers={"Host": "db.test.clamav.net", "Range": "bytes=0-511"},
                )
                version = (
                    int(resp.content.decode("ascii").split(":")[2])
                    if resp.status_code == 206
                    else -1
                )
                if version < self.daily:
                    v.append(f"{m.name} serves daily {version} < {self.daily} after the run")
        return v


def _pid(r: RsyncDaemon) -> int:
    return r._proc.pid if r._proc is not None else 0


def _nginx_pids(web: Nginx) -> list[int]:
    proc = web._proc
    if proc is None:
        return []
    with contextlib.suppress(psutil.Error):
        return [proc.pid, *(c.pid for c in psutil.Process(proc.pid).children(recursive=True))]
    return [proc.pid]


def _is_pid(pid: int) -> Callable[[psutil.Process], bool]:
    return lambda p: p.pid == pid


def _progress(state: Path, known: set[str]) -> int:
    """Return how many mirrors of the newest run not in `known` have an outcome (-1: none)."""
    if not state.exists():
        return -1
    try:
        with contextlib.closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=1)) as c:
            runs = [r[0] for r in c.execute("SELECT run_id FROM publish_runs")]
            new = [r for r in runs if r not in known]
            if not new:
                return -1
            (count,) = c.execute(
                "SELECT count(*) FROM publish_targets WHERE run_id = ? AND outcome IS NOT NULL",
                (new[0],),
            ).fetchone()
            return int(count)
    except sqlite3.Error:
        return -1


def _twin(twin: subprocess.Popen[str] | None) -> str | None:
    return f"second syncd publish, pid {twin.pid}" if twin is not None else None


def _json(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _outcomes(doc: dict[str, Any]) -> dict[str, str]:
    return {m.get("name", "?"): m.get("outcome", "?") for m in doc.get("mirrors", [])}


def soak_root() -> Path:
    """A root outside /tmp/pytest-of-<user> (see tests/syncd/conftest.py on why)."""
    base = Path(tempfile.mkdtemp(prefix="soak-", dir="/var/tmp" if os.geteuid() == 0 else None))
    base.chmod(0o711)
    return base
