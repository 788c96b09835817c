"""``syncd publish`` and ``syncd heartbeat`` as use cases: what happens between the command
line's options and its printing. `prepare` reads the inventory and the release once and
builds the push; the command line runs it (with its live display); `finish` promotes the
mirrors whose first publish this was, runs the release gate, and works out the exit code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from syncd.dns.update import DnsUpdate, gate_after_publish
from syncd.files import read_inventory, read_source_tree
from syncd.publish.job import PublishJob, RunOutcome
from syncd.publish.outcome import PushOutcome
from syncd.publish.request import parse_expect
from syncd.publish.summary import exit_code
from syncd.release.mailer import Announced, announce_due, record_release
from syncd.release.manifest import history_warning
from syncd.release.tree import SourceTree
from syncd.settings import SyncdConfig


@dataclass
class Prepared:
    """The push to run, the release it pushes (None: no source tree given), and what the
    operator should hear before it starts."""

    job: PublishJob
    source: SourceTree | None
    warnings: list[str] = field(default_factory=list)
    inventory_stamp: tuple[int, int] | None = None  # (mtime ns, size) as read


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


@dataclass(frozen=True)
class Inputs:
    """Where the push's inputs are: the inventory, the pusher key, the record; `sources`:
    each of [[sources]] pushes its share with its own key (no --key given)."""

    inventory: Path
    key: Path
    state: Path
    sources: bool


def prepare(
    cfg: SyncdConfig,
    inputs: Inputs,
    *,
    only: Sequence[str],
    tree: Path | None,
    expect: Sequence[str] = (),
    resume: str | None = None,
) -> Prepared:
    """Build the push: the inventory and the release read once; the proof's files, tails and
    pins from the release; the expected versions from it (and `expect`, ``daily=N``).
    `resume`: finish that run (the release is not re-read into what it expects)."""
    stamp = _stamp(inputs.inventory)
    job = PublishJob(
        key=inputs.key,
        state=inputs.state,
        inventory=read_inventory(inputs.inventory),
        inventory_path=str(inputs.inventory),
        policy=cfg.policy,
        only=list(only),
        sources=list(cfg.sources) if inputs.sources else [],
    )
    source = read_source_tree(tree) if tree is not None else None
    warnings = []
    if source is not None:
        job.files, job.tails = source.files, source.tails
        job.files_for = dict(source.manifest.versions)
        job.pins = source.pins
        history = history_warning(source.manifest, cfg.policy.cdiff_history)
        if history and resume is None:
            warnings.append(history)
        if resume is None:
            job.expected = source.versions
    job.expected.update(parse_expect(expect))
    job.resume = resume
    problem = tier_problem(job)
    if problem:
        warnings.append(problem)
    return Prepared(job, source, warnings, stamp)


def tier_problem(job: PublishJob) -> str | None:
    """Why the inventory's hubs get no second wave in this publish, or None."""
    if not any(m.hub is not None for m in job.inventory.active()):
        return None
    if not job.sources:
        return "the inventory has hubs but syncd.toml has no [[sources]]: no second wave"
    if not job.pins:
        return (
            "the inventory has hubs but no source tree gives the release's CVD md5s to pin: "
            "no second wave (give --source-tree or source_tree in syncd.toml)"
        )
    return None


@dataclass(frozen=True)
class Finished:
    """After the push: the mirrors now active, what the DNS gate did (None: not run), and the
    exit code (0 every mirror ok; 1 any not, the DNS update failed, or the record lost
    writes)."""

    promoted: list[str]
    dns: DnsUpdate | None
    exit_code: int
    announcement: Announced | None = None  # [announce]: the list's mail (never the exit code)


def finish(
    cfg: SyncdConfig,
    prepared: Prepared,
    outcome: RunOutcome,
    *,
    gate: bool,
    dry_run: bool,
    now: float,
) -> Finished:
    """Promote the pending mirrors the push served (their first publish), remember the
    release's CVD headers, then, with `gate` ([dns] configured, a release read, not --no-dns),
    run the release gate and the DNS steps (`syncd.dns.update`); with [announce], mail the
    release the TXT announces to the list unless it was before (`syncd.release.mailer`; a
    failure is reported, never the exit code's); work out the exit code."""
    job = prepared.job
    path = Path(job.inventory_path)
    ok = {r.name for r in outcome.results if r.outcome is PushOutcome.OK}
    promoted: list[str] = []
    # the inventory is edited (and read again) only when a mirror pushed was pending
    if any(m.pending and m.name in ok for m in job.inventory.mirrors):
        # imported here: onboarding's probes load httpx (and rich), which a publish without
        # http_check never needs
        from syncd.inventory.onboarding import promote_pending

        promoted = promote_pending(path, ok)
    dns = None
    if prepared.source is not None and not dry_run:
        record_release(job.state, prepared.source, now)
    if gate and cfg.dns is not None and prepared.source is not None:
        dns = gate_after_publish(
            cfg,
            cfg.dns,
            # as read for the push, unless the push promoted mirrors or someone changed the
            # file meanwhile (a mirror disabled during a long publish is not in the gate)
            inventory=(
                read_inventory(path)
                if promoted or _stamp(path) != prepared.inventory_stamp
                else job.inventory
            ),
            state=job.state,
            source=prepared.source,
            dry_run=dry_run,
            now=now,
        )
    announcement = None
    if cfg.announce is not None and not dry_run:
        announcement = announce_due(cfg, job.state, now=now)
    code = (
        exit_code(outcome.results)
        or int(dns is not None and bool(dns.error))
        or int(bool(outcome.record_error))
    )
    return Finished(promoted, dns, code, announcement)


def check_secrets(cfg: SyncdConfig, path: Path | None) -> tuple[list[str], list[str]]:
    """The pusher keys (`key`, each ``[[sources]] key``), the ``[dns]`` TSIG secret and the
    ``[monitor.smtp]`` password file of `cfg` (read from `path`), checked as syncd checks them
    when it uses them (see
    `syncd.files.read_secret_file`; a pusher key must also load): one line per secret that
    passes, and one line per problem naming the file and the fix."""
    from syncd.errors import SyncdError
    from syncd.files import read_secret_file
    from syncd.publish.ssh import load_pusher_key  # asyncssh: only for `syncd config check`

    where = path or "syncd.toml"
    keys = [(cfg.key, "key")] if cfg.key is not None else []
    keys += [(s.key, f"[[sources]] {s.name} key") for s in cfg.sources]
    fine: list[str] = []
    problems: list[str] = []
    for key, field_name in keys:
        try:
            load_pusher_key(key, missing=f"fix '{field_name}' in {where}")
            fine.append(f"{field_name}: {key}: private key, owner only: ok")
        except SyncdError as err:
            problems.append(str(err))
    if cfg.dns is not None:
        secret = cfg.dns.key_secret_file
        try:
            read_secret_file(
                secret,
                "[dns] key_secret_file",
                missing=f"write the TSIG secret there (mode 600) or fix key_secret_file in {where}",
            )
            fine.append(f"[dns] key_secret_file: {secret}: owner only: ok")
        except SyncdError as err:
            problems.append(str(err))
    smtp = cfg.monitor.smtp
    if smtp is not None and smtp.password_file is not None:
        try:
            read_secret_file(
                smtp.password_file,
                "[monitor.smtp] password_file",
                missing=f"write the password there (mode 600) or fix password_file in {where}",
            )
            fine.append(f"[monitor.smtp] password_file: {smtp.password_file}: owner only: ok")
        except SyncdError as err:
            problems.append(str(err))
    return fine, problems
