"""``syncd status`` and ``syncd runs show``: read past publish runs from the record."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from syncd.cli.common import ConfigOpt, JsonOpt, StateOpt, need, settings, stamp
from syncd.cli.groups import group
from syncd.cli.releases import release_lines
from syncd.publish.history import run_detail, status
from syncd.publish.report import dumps_strict
from syncd.release.history import of_run
from syncd.sqlite import StoreError

status_app = group()
app = group(help="Read past publish runs from the record.", no_args_is_help=True)


def _path(state: Path | None, config: Path | None) -> Path:
    cfg = settings(config)
    return need(state or cfg.state, "--state", "state", cfg)


@status_app.command("status")
def status_cmd(state: StateOpt = None, config: ConfigOpt = None) -> None:
    """Show recent runs and each mirror's current state from the record."""
    found = status(_path(state, config))
    typer.echo("recent runs:" if found.runs else "no runs recorded")
    for counted in found.runs:
        run = counted.run
        counts = ", ".join(f"{n} {k}" for k, n in sorted(counted.outcomes.items()))
        release = " ".join(f"{db}={v}" for db, v in sorted(run.expected.items()))
        typer.echo(
            f"  {run.run_id}  {stamp(run.started_at)}  {run.kind:9}  {run.state:11}  "
            f"{release}  {counts}"
        )
    states = found.mirrors
    if states:
        typer.echo("mirrors:")
    for s in states:
        versions = " ".join(f"{db}={v}" for db, v in sorted((s.versions or {}).items()))
        typer.echo(f"  {s.mirror}  {s.outcome:17}  last ok {stamp(s.last_ok_at)}  {versions}")


@app.command("show")
def show_cmd(
    run_id: Annotated[str, typer.Argument(help="The run id printed by syncd publish.")],
    state: StateOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show one run: each mirror's outcome and every attempt, and, when syncd.toml has
    [[sources]], the source each sync was pushed to and why; then how its release reached the
    mirrors (every run of that release counted: the times to 50, 90, 99 and 100 % from the
    build and from the publish's start, per source and per hub, who still misses it, when the
    TXT announced it)."""
    path = _path(state, config)
    detail = run_detail(path, run_id)
    try:
        prop = of_run(path, run_id)
    except StoreError as err:  # the run is shown all the same: its figures are the extra
        prop = None
        typer.echo(f"syncd: the release's figures are not shown: {err}", err=True)
    run, targets, attempts = detail.run, detail.targets, detail.attempts
    run_state = run.state
    if json_out:
        doc: dict[str, Any] = {
            "run_id": run.run_id,
            "state": run_state,
            "expected": run.expected,
            "invocations": run.invocations,
            "mirrors": [
                {
                    "name": t.mirror,
                    "outcome": t.outcome,
                    "attempts": t.attempts,
                    "error": t.error,
                    "report": t.report,
                    **_source(attempts[t.mirror]),
                }
                for t in targets
            ],
            "release": None if prop is None else prop.to_json(),
        }
        typer.echo(dumps_strict(doc))
        return
    typer.echo(
        f"run {run.run_id}: {run_state}, started {stamp(run.started_at)}, "
        f"finished {stamp(run.finished_at)}, {run.invocations} invocation(s)"
    )
    typer.echo(f"request: {run.request}")
    for t in targets:
        typer.echo(f"{t.mirror}: {t.outcome or 'pending'}" + (f": {t.error}" if t.error else ""))
        for a in attempts[t.mirror]:
            exit_text = "-" if a["exit_status"] is None else a["exit_status"]
            typer.echo(
                f"  #{a['number']} {a['verb']:6} {stamp(a['started_at'])} "
                f"{a['verdict'] or 'unfinished'} exit {exit_text}"
                + (f": {a['error']}" if a["error"] else "")
            )
            if a["source"] and a["verb"] == "sync":
                typer.echo(f"     source {a['source']}: {a['source_reason']}")
    if prop is not None:
        for line in release_lines(prop):
            typer.echo(line)


def _source(attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """The source the last sync of a mirror was pushed to and why, when the run scheduled
    sources ([[sources]] in syncd.toml); else nothing, as before."""
    chosen = [a for a in attempts if a["verb"] == "sync" and a["source"]]
    if not chosen:
        return {}
    return {"source": chosen[-1]["source"], "source_reason": chosen[-1]["source_reason"]}
