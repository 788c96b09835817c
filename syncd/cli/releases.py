"""``syncd releases``: the last releases side by side, how fast each reached the mirrors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from syncd.cli.common import ConfigOpt, JsonOpt, StateOpt, need, settings, stamp
from syncd.cli.groups import group
from syncd.publish.report import dumps_strict
from syncd.release.announcement import span
from syncd.release.history import recent
from syncd.release.propagation import QUANTILES, Propagation

app = group()


def _path(state: Path | None, config: Path | None) -> Path:
    cfg = settings(config)
    return need(state or cfg.state, "--state", "state", cfg)


def release_lines(p: Propagation) -> list[str]:
    """A release's propagation as ``syncd runs show`` prints it."""
    q = p.from_start
    versions = " ".join(f"{db}={v}" for db, v in sorted(p.versions.items()))
    lines = [
        f"release {versions}: built {stamp(p.built_at)}, publish began {stamp(p.started_at)}, "
        f"announced in DNS {stamp(p.announced_at)}"
        + (f" ({span(p.announce_delay_s)} after)" if p.announced_at is not None else ""),
        f"  served by {q.served} of {q.total} active mirrors; from the publish's start: "
        + ", ".join(f"t{k} {span(q.get(k))}" for k in QUANTILES),
    ]
    if p.from_build is not None:
        b = p.from_build
        lines.append("  from the build: " + ", ".join(f"t{k} {span(b.get(k))}" for k in QUANTILES))
    for title, groups in (("source", p.by_source), ("hub", p.by_hub)):
        for name, g in sorted(groups.items()):
            lines.append(
                f"  {title} {name}: {g.served} of {g.total}, "
                + ", ".join(f"t{k} {span(g.get(k))}" for k in QUANTILES)
            )
    if p.missing:
        lines.append(f"  still missing it: {', '.join(p.missing)}")
    return lines


@app.command("releases")
def releases_cmd(
    last: Annotated[
        int,
        typer.Option(
            "--last", metavar="N", min=1, max=500, help="How many releases (newest first)."
        ),
    ] = 10,
    state: StateOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show the last N releases side by side: when each was built, published and announced in
    DNS, how long it took from the publish's start until 50, 90, 99 and 100 % of the active
    mirrors served it (proven over HTTP by the publish or seen by the monitor), and how many
    still miss it. 'syncd runs show RUN_ID' gives one release per source and per hub."""
    found = recent(_path(state, config), last)
    if json_out:
        typer.echo(dumps_strict({"releases": [p.to_json() for p in found]}))
        return
    if not found:
        typer.echo("no releases recorded")
        return
    head = ["daily", "main", "bytecode", "publish began", "announce", "served"]
    head += [f"t{k}" for k in QUANTILES] + ["t90 build", "missing"]
    rows = [head]
    for p in found:
        q = p.from_start
        b = p.from_build
        rows.append(
            [
                str(p.versions.get("daily", "-")),
                str(p.versions.get("main", "-")),
                str(p.versions.get("bytecode", "-")),
                stamp(p.started_at),
                span(p.announce_delay_s),
                f"{q.served}/{q.total}",
                *(span(q.get(k)) for k in QUANTILES),
                span(b.get(90) if b is not None else None),
                str(len(p.missing)),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        typer.echo(
            "  ".join(
                c.rjust(w) if i != 3 else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            ).rstrip()
        )
