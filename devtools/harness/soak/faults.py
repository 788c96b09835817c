"""The soak's faults: one class per fault, registered under its name (the CLI's and the
record's name; the registry's order is the order the seed shuffles, so it never changes).

A round makes one instance of its fault and calls, in this order:
``draw(rng)`` (every random choice, right after the round drew its victim and delay),
``arm(r)`` (before syncd starts), ``trigger(r)`` (once syncd runs), ``heal(r)`` (when syncd
has ended, and again on the way out: it may run twice), ``disturb_resume(r, run_id)`` (when the
round resumes the run) and ``evidence(r)`` (what the fault did this round, from the proxies'
counters since the round began, the signal sent or the fault's own record; None when it did not
fire, which fails the round).
"""

from __future__ import annotations

import abc
import random
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import psutil

from devtools.harness.cvd import build_cvd
from devtools.harness.faultproxy import FaultProxy, ProxyStats
from devtools.harness.faults import ChurningFile, ProcessTrigger, cmdline, fill_disk
from devtools.harness.soak import record
from devtools.harness.soak.fleet import PAYLOAD, Fleet, Mirror
from devtools.harness.soak.invariants import targets_violations
from devtools.harness.soak.record import parse_json, summary_outcomes


@dataclass
class Round:
    """What one round's fault acts on: the victim, the delay, the syncd processes (killed on
    the way out), the runs recorded before it, and violations the fault itself saw."""

    victim: Mirror
    delay: float
    runs_before: set[str]
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    marks: dict[int, ProxyStats] = field(default_factory=dict)

    @property
    def syncd(self) -> subprocess.Popen[str]:
        return self.procs[0]

    def mark(self, proxies: list[FaultProxy]) -> None:
        """Note every proxy's counters as the round begins."""
        self.marks = {id(p): p.stats.copy() for p in proxies}

    def delta(self, proxy: FaultProxy) -> ProxyStats:
        """What `proxy` counted since the round began."""
        return proxy.stats.since(self.marks.get(id(proxy), ProxyStats()))


class Fault:
    """No fault: a clean round. Subclasses override the steps they need."""

    name: ClassVar[str] = "none"

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def unavailable(self) -> str | None:
        """Why this fault cannot run here (the round then runs clean), or None."""
        return None

    def draw(self, rng: random.Random) -> None:
        """Draw this round's random choices."""

    def arm(self, r: Round) -> None:
        """Set the fault up before syncd starts."""

    def trigger(self, r: Round) -> None:
        """Set the fault going once syncd runs."""

    def heal(self, r: Round) -> None:
        """Stop and undo what this fault started; a second call does nothing."""

    def disturb_resume(self, r: Round, run_id: str, rng: random.Random) -> tuple[str, str]:
        """Act on the resume of `run_id`; return the output (stdout, stderr) it caused."""
        return "", ""

    def evidence(self, r: Round) -> str | None:
        """What the fault did this round, or None when it did nothing."""
        return None


REGISTRY: dict[str, type[Fault]] = {}


def register(cls: type[Fault]) -> type[Fault]:
    REGISTRY[cls.name] = cls
    return cls


register(Fault)


# -- network faults, through the fault proxies in front of sshd and rsyncd ----------------------


class ProxyFault(Fault, abc.ABC):
    """A fault set on one proxy; it fired when that proxy's `counter` (a ``ProxyStats`` field)
    went up this round."""

    counter: ClassVar[str]

    @abc.abstractmethod
    def proxy(self, r: Round) -> FaultProxy:
        """The proxy this fault is set on."""

    def evidence(self, r: Round) -> str | None:
        d = self.delta = r.delta(self.proxy(r))
        if getattr(d, self.counter) <= 0:
            return None
        return (
            f"{self.name}: {self.counter} {getattr(d, self.counter)} this round "
            f"(accepted {d.accepted}, refused {d.refused}, {d.bytes_down} bytes down)"
        )


class SshFault(ProxyFault):
    """A fault on the proxy in front of the victim's sshd."""

    def proxy(self, r: Round) -> FaultProxy:
        return r.victim.proxy

    def evidence(self, r: Round) -> str | None:
        found = super().evidence(r)
        return found and f"{found} on {r.victim.name}"


@register
class SshStall(SshFault):
    name = "ssh_stall"
    counter = "stalled"

    def arm(self, r: Round) -> None:
        r.victim.proxy.set("stall")


@register
class SshDrop(SshFault):
    """The ssh link reset after a share of a session's bytes from the server: a share, not a
    count, because a whole session is only a few KB (a count of 6000 never fired)."""

    name = "ssh_drop"
    counter = "dropped"
    FALLBACK_SESSION = 3000  # bytes down, when no session to the victim has ended yet

    def draw(self, rng: random.Random) -> None:
        self.share = rng.choice([0.0, 0.05, 0.4, 0.8])

    def arm(self, r: Round) -> None:
        session = r.victim.proxy.stats.last_session_down or self.FALLBACK_SESSION
        self.drop_after = int(session * self.share)
        r.victim.proxy.set("drop", drop_after=self.drop_after)

    def evidence(self, r: Round) -> str | None:
        found = super().evidence(r)
        return found and f"{found}, after {self.drop_after} bytes"


@register
class SshDelay(SshFault):
    name = "ssh_delay"
    counter = "delayed"

    def arm(self, r: Round) -> None:
        r.victim.proxy.set("pass", delay_s=0.08)


class RsyncFault(ProxyFault):
    """A fault on the proxy in front of an rsync daemon (rsync1 unless `source` says)."""

    source = 0

    def proxy(self, r: Round) -> FaultProxy:
        return self.fleet.rproxy[self.source]


@register
class RsyncStall(RsyncFault):
    name = "rsync_stall"
    counter = "stalled"

    def arm(self, r: Round) -> None:
        self.fleet.rproxy[0].set("stall")


@register
class RsyncDrop(RsyncFault):
    name = "rsync_drop"
    counter = "dropped"

    def draw(self, rng: random.Random) -> None:
        self.drop_after = rng.choice([0, 100, 20000])

    def arm(self, r: Round) -> None:
        self.fleet.rproxy[0].set("drop", drop_after=self.drop_after)


@register
class RsyncRefuse(RsyncFault):
    name = "rsync_refuse"
    counter = "refused"

    def draw(self, rng: random.Random) -> None:
        self.source = rng.randrange(2)

    def arm(self, r: Round) -> None:
        self.fleet.rproxy[self.source].set("refuse")


# -- process faults: a signal at a chosen moment ------------------------------------------------


class ProcessFault(Fault, abc.ABC):
    """Signal a process that `start` finds (SIGSTOP: for `stop_s`, then SIGCONT). With
    `slow_transfer`, the rsync proxies are throttled first so a transfer lasts and the signal
    lands mid-stream."""

    slow_transfer: ClassVar[bool] = True
    sig: ClassVar[int] = signal.SIGKILL
    stop_s: ClassVar[float] = 1.5
    process_trigger: ProcessTrigger | None = None

    def arm(self, r: Round) -> None:
        if self.slow_transfer:
            for proxy in self.fleet.rproxy:
                proxy.set("pass", rate_bps=250_000)

    def delay_s(self, r: Round) -> float:
        return r.delay / 4

    @abc.abstractmethod
    def start(self, r: Round) -> ProcessTrigger:
        """The trigger that finds and signals this fault's process."""

    def trigger(self, r: Round) -> None:
        self.process_trigger = self.start(r).start()

    def heal(self, r: Round) -> None:
        if self.process_trigger is not None:
            self.process_trigger.stop()

    def evidence(self, r: Round) -> str | None:
        return self.process_trigger.fired if self.process_trigger is not None else None


class MatchedProcessFault(ProcessFault):
    """Signal the first process `matches` finds, `delay_s(r)` after it appears."""

    @abc.abstractmethod
    def matches(self, r: Round) -> Callable[[psutil.Process], bool]:
        """The process to signal."""

    def start(self, r: Round) -> ProcessTrigger:
        return ProcessTrigger(
            self.matches(r), sig=self.sig, delay_s=self.delay_s(r), stop_s=self.stop_s
        )


def _client_of(victim: Mirror) -> Callable[[psutil.Process], bool]:
    conf = str(victim.conf)
    return lambda p: p.name().startswith("python") and conf in cmdline(p)


@register
class KillSyncd(MatchedProcessFault):
    """SIGKILL syncd once `done` mirrors have a recorded outcome (0: once the run is recorded);
    the resume is killed too half of the time, and a third invocation finishes."""

    name = "kill_syncd"

    def draw(self, rng: random.Random) -> None:
        self.done = rng.randrange(len(self.fleet.mirrors) - 1)

    def matches(self, r: Round) -> Callable[[psutil.Process], bool]:
        state = self.fleet.state_db
        known = record.run_ids(state)
        pid, done = r.syncd.pid, self.done
        return lambda p: p.pid == pid and record.progress(state, known) >= done

    def delay_s(self, r: Round) -> float:
        return r.delay / 8

    def disturb_resume(self, r: Round, run_id: str, rng: random.Random) -> tuple[str, str]:
        if rng.random() >= 0.5:
            return "", ""
        doomed = self.fleet.syncd("--resume", run_id)
        time.sleep(rng.uniform(0.3, 1.2))
        doomed.kill()
        return doomed.communicate(timeout=10)


@register
class StopSyncd(KillSyncd):
    """SIGSTOP syncd for 1.5 s once the run is recorded."""

    name = "stop_syncd"
    slow_transfer = False
    sig = signal.SIGSTOP

    def draw(self, rng: random.Random) -> None:
        self.done = 0

    def disturb_resume(self, r: Round, run_id: str, rng: random.Random) -> tuple[str, str]:
        return "", ""


@register
class KillClient(MatchedProcessFault):
    name = "kill_client"  # a client lives about a second

    def matches(self, r: Round) -> Callable[[psutil.Process], bool]:
        return _client_of(r.victim)


@register
class StopClient(KillClient):
    """A client frozen for 2 s, well within syncd's deadline."""

    name = "stop_client"
    sig = signal.SIGSTOP
    stop_s = 2.0


def _mirror_rsync(fleet: Fleet) -> Callable[[psutil.Process], bool]:
    mirrors = str(fleet.root / "mirrors")
    return lambda p: p.name() == "rsync" and mirrors in cmdline(p)


@register
class KillRsync(MatchedProcessFault):
    """SIGKILL a client's rsync mid-transfer."""

    name = "kill_rsync"

    def matches(self, r: Round) -> Callable[[psutil.Process], bool]:
        return _mirror_rsync(self.fleet)


@register
class KillSshd(MatchedProcessFault):
    """SIGKILL the victim's sshd: the listener or the session serving this push."""

    name = "kill_sshd"
    slow_transfer = False

    def draw(self, rng: random.Random) -> None:
        self.listener = rng.random() < 0.5

    def arm(self, r: Round) -> None:
        # a session lives only as long as its push (0.5 s when nothing changed): the transfer
        # throttled, and the signal sent within 0.2 s of the session's start (delay_s), so the
        # session cannot end first and leave the fault unfired
        if not self.listener:
            for proxy in self.fleet.rproxy:
                proxy.set("pass", rate_bps=250_000)

    def matches(self, r: Round) -> Callable[[psutil.Process], bool]:
        sshd_pid = r.victim.sshd.pid
        if self.listener:
            pid = sshd_pid or -1
            return lambda p: p.pid == pid
        return lambda p: p.name() == "sshd" and p.ppid() == sshd_pid

    def delay_s(self, r: Round) -> float:
        return r.delay if self.listener else r.delay / 4


@register
class KillRsyncd(ProcessFault):
    """SIGKILL rsync1's daemon at the moment a client starts pulling."""

    name = "kill_rsyncd"

    def start(self, r: Round) -> ProcessTrigger:
        r1 = self.fleet.rsyncd_pid(0)
        return ProcessTrigger(_mirror_rsync(self.fleet), victim=r1, delay_s=r.delay / 4)


@register
class StopRsyncd(ProcessFault):
    """rsync1's daemon frozen for 2.5 s: new pulls wait or fail over."""

    name = "stop_rsyncd"

    def start(self, r: Round) -> ProcessTrigger:
        r1 = self.fleet.rsyncd_pid(0)
        return ProcessTrigger(_mirror_rsync(self.fleet), sig=signal.SIGSTOP, victim=r1, stop_s=2.5)


# -- the source tree, the disk, a second operator -----------------------------------------------


@register
class ChurnSource(Fault):
    """The source's daily.cvd rewritten in place, slowly, while the mirrors pull it."""

    name = "churn_source"
    churn: ChurningFile | None = None
    churned: str | None = None

    def arm(self, r: Round) -> None:
        final = build_cvd("daily", self.fleet.daily, payload_size=PAYLOAD + 4096)
        self.churn = ChurningFile(self.fleet.tree / "daily.cvd", final).__enter__()

    def heal(self, r: Round) -> None:
        if self.churn is not None:
            self.churn.__exit__(None, None, None)
            self.churned = f"source daily.cvd rewritten in place {self.churn.rewrites} times"
            self.churn = None

    def evidence(self, r: Round) -> str | None:
        return self.churned


@register
class DiskFull(Fault):
    """Mirror 0's DocumentRoot, on its 2 MB tmpfs, filled up before the push."""

    name = "disk_full"
    filler: Path | None = None
    filled: str | None = None

    def unavailable(self) -> str | None:
        return f"{self.fleet.tmpfs_error}" if self.fleet.tmpfs is None else None

    def draw(self, rng: random.Random) -> None:
        self.leave = rng.choice([0, 4096, 60000])

    def arm(self, r: Round) -> None:
        assert self.fleet.tmpfs is not None
        self.filler = fill_disk(self.fleet.tmpfs, leave=self.leave)
        self.filled = f"filled {self.filler}"

    def heal(self, r: Round) -> None:
        if self.filler is not None:
            self.filler.unlink(missing_ok=True)
            self.filler = None

    def evidence(self, r: Round) -> str | None:
        return self.filled


@register
class DoublePublish(Fault):
    """A second ``syncd publish`` of the same release, `delay` later: a second operator, a cron
    overlap. Its run must be recorded whole too."""

    name = "double_publish"
    twin: subprocess.Popen[str] | None = None
    collected = False

    def trigger(self, r: Round) -> None:
        time.sleep(r.delay)
        self.twin = self.fleet.syncd("--source-tree", str(self.fleet.tree))
        r.procs.append(self.twin)

    def heal(self, r: Round) -> None:
        if self.twin is None or self.collected:
            return
        self.collected = True
        tout, terr = self.twin.communicate(timeout=90)
        tdoc = parse_json(tout)
        if self.twin.returncode != 0 or not tdoc.get("run_id"):
            r.violations.append(
                f"concurrent publish exit {self.twin.returncode}: {summary_outcomes(tdoc)}"
                f" {terr[-600:]}"
            )
        else:
            r.runs_before.add(tdoc["run_id"])
            r.violations += targets_violations(self.fleet, tdoc["run_id"])

    def evidence(self, r: Round) -> str | None:
        return f"second syncd publish, pid {self.twin.pid}" if self.twin is not None else None


FAULTS = tuple(REGISTRY)
