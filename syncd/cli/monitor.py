"""``syncd monitor``: check every mirror's freshness, record it, announce every change, and
write the status page and the Prometheus metrics."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from syncd.cli.common import ConfigOpt, StateOpt, need, settings
from syncd.cli.groups import group
from syncd.dns.update import rotation
from syncd.monitor.run import PassSummary, repeat, run_pass
from syncd.publish.report import dumps_strict
from syncd.release.mailer import announce_due

app = group()


def _print_notices(summary: PassSummary) -> None:
    """The certificates that need someone's attention, and the mirrors in maintenance."""
    for cert in summary.certs:
        if cert.state != "ok":
            why = "; ".join(cert.problems) or "-"
            typer.echo(f"{cert.mirror} https certificate {cert.state}: {why}")
    for m in summary.mirrors:
        window = m.maintenance_json()
        if window is not None:  # out of the rotation, its mails held
            typer.echo(f"maintenance: {m.name} until {window['until']}: {window['reason']}")


def _print(summary: PassSummary) -> None:
    counts: dict[str, int] = {}
    for m in summary.mirrors:
        counts[m.state] = counts.get(m.state, 0) + 1
    typer.echo("mirrors: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    # a mirror's first check that finds it fresh is no news: counted, not listed
    first_fresh = [c for c in summary.changes if c.first_fresh]
    if first_fresh:
        typer.echo(f"first checks: {len(first_fresh)} fresh")
    for c in summary.changes:
        if not c.first_fresh:
            typer.echo(f"{c.mirror} [{c.family}]: {c.old} -> {c.new}: {c.reason}")
    _print_notices(summary)
    if summary.suspect:
        typer.echo(f"the monitor suspects itself: {summary.suspect}", err=True)
    if summary.dns is not None:
        d = summary.dns
        for dc in d.changes:
            where = f"{dc.name} [view {dc.view}]" if dc.view else dc.name
            typer.echo(
                f"dns: {where} {dc.rdtype}: +{list(dc.add)} -{list(dc.remove)} ({dc.reason})"
            )
        if d.error:
            typer.echo(f"dns: rotation not updated: {d.error}", err=True)
    mail = summary.mail
    if mail.error:
        typer.echo(f"mail failed: {mail.error}", err=True)
    elif mail.sent or mail.held:
        typer.echo(f"mail: {mail.sent} sent, {mail.held} held back by the rate limit")


@app.command("monitor")
def monitor_cmd(
    *,
    inventory: Annotated[
        Path | None, typer.Option("--inventory", metavar="FILE", help="The inventory TOML.")
    ] = None,
    state: StateOpt = None,
    source_tree: Annotated[
        Path | None,
        typer.Option(
            "--source-tree", metavar="DIR", help="The release's CVDs: what current means."
        ),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="One pass, then exit (cron, systemd timer).")
    ] = False,
    every: Annotated[
        float | None,
        typer.Option(
            "--every",
            metavar="SECONDS",
            help="Seconds between passes (default [monitor] interval_s).",
        ),
    ] = None,
    passes: Annotated[
        int | None,
        typer.Option(
            "--passes", metavar="N", help="Stop after this many passes (long-running mode)."
        ),
    ] = None,
    no_mail: Annotated[
        bool, typer.Option("--no-mail", help="Record and print, send no mail.")
    ] = False,
    no_dns: Annotated[
        bool,
        typer.Option(
            "--no-dns",
            help="Leave the rotation alone (by default, with [dns], each pass takes mirrors "
            "that stopped serving the announced release out of every pool and puts back those "
            "that serve it again; the TXT record is never moved by the monitor).",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per pass on stdout.")
    ] = False,
    status_page: Annotated[
        Path | None,
        typer.Option(
            "--status-page",
            help="Write the status site here: this index.html, status.json and mirrors/ beside "
            "it (default [monitor] status_page).",
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Check every enabled mirror over HTTP as freshclam sees it (timestamp and CVD headers, on
    IPv4 and IPv6 separately), judge it fresh / lagging / old / unreachable / removed, record
    every check and change in the state database, mail each change to the mirror's admins and a
    digest to the team, and write the status page and Prometheus metrics configured in
    [monitor] (with the traffic the mirrors reported); with [announce], mail the list the
    release the TXT announces if no publish could (once per release). Each mirror's
    /local_stats/ is asked for without credentials: one open to the world is mailed once to
    its admins (a warning). Runs once with --once, else every --every seconds until
    interrupted."""
    cfg = settings(config)
    inv = need(inventory or cfg.inventory, "--inventory", "inventory", cfg)
    db = need(state or cfg.state, "--state", "state", cfg)
    tree = need(source_tree or cfg.source_tree, "--source-tree", "source_tree", cfg)
    monitor = cfg.monitor
    if status_page is not None:
        monitor = monitor.model_copy(update={"status_page": status_page})

    rotate = None
    if cfg.dns is not None and not no_dns:
        rotate = rotation(cfg, cfg.dns, state=db)

    def one_pass() -> PassSummary:
        summary = run_pass(
            inventory=inv,
            state=db,
            source_tree=tree,
            cfg=monitor,
            send_mail=not no_mail,
            clock=time.time,
            gate_share=cfg.dns.gate_share if cfg.dns else None,
            http_check=cfg.policy.http_check,
            rotate=rotate,
            t90_limit_s=cfg.releases.t90_limit_h * 3600,
            pool_ttl=cfg.dns.pool_ttl if cfg.dns else 0.0,
        )
        if cfg.announce is None or no_mail:
            return summary
        # the release the TXT announces, mailed to the list if no publish could yet
        done = announce_due(cfg, db, now=time.time())
        if done is None:
            return summary
        if done.sent or done.error:  # stderr, the log: what was tried (a skip is no news)
            typer.echo(f"syncd: {done.line()}", err=True)
        return replace(summary, announcement=done.to_json())

    failed = False
    try:
        for summary in repeat(
            one_pass,
            interval_s=every if every is not None else cfg.monitor.interval_s,
            passes=1 if once else passes,
        ):
            if as_json:
                typer.echo(dumps_strict(summary.to_json(), sort_keys=True))
            else:
                _print(summary)
            failed = bool(summary.mail.error) or bool(summary.dns and summary.dns.error)
    except KeyboardInterrupt:
        typer.echo("monitor: interrupted", err=True)
    raise typer.Exit(1 if failed else 0)
