"""The release's announcement to the list (the old guide's "automatically posted" mail): one
plain-text message per release. Pure: the release's CVD headers, the previous release's (as
the record knows them), its propagation and `now` in; a :class:`Mail` out. Every value from a
header (the builder, the build time text) is cleaned (`syncd.text.clean`) where it is used,
and again, line by line, by :class:`Mail`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from pushwire.cvd import DATABASES, CvdHeader
from syncd.monitor.announce import Mail
from syncd.release.propagation import QUANTILES, Propagation
from syncd.text import clean


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):
        return "-"


def span(seconds: float | None) -> str:
    """Seconds as people read them: "45 s", "12 min", "3.5 h", "2.0 d"; "-" for None."""
    if seconds is None:
        return "-"
    s = max(0.0, seconds)
    if s < 120:
        return f"{s:.0f} s"
    if s < 2 * 3600:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def _added(db: str, now: CvdHeader, before: Mapping[str, CvdHeader]) -> str:
    prev = before.get(db)
    if prev is None:
        return "n/a"
    if prev.version == now.version:
        return "unchanged"
    return f"{now.signatures - prev.signatures:+d}"


def subject(headers: Mapping[str, CvdHeader]) -> str:
    parts = [f"{db} {headers[db].version}" for db in ("daily", "main", "bytecode") if db in headers]
    return clean("ClamAV database update: " + ", ".join(parts), 200)


def message(
    headers: Mapping[str, CvdHeader],
    previous: Mapping[str, CvdHeader],
    prop: Propagation,
    *,
    to: str,
    signature: str,
    now: float,
) -> Mail:
    """The announcement of the release whose headers are `headers` (db -> header), compared
    with `previous` (the release before, as the record knows it; missing: "n/a"), with how
    far it had propagated at `now`."""
    ordered = [db for db in DATABASES if db in headers] + sorted(
        db for db in headers if db not in DATABASES
    )
    rows = [("database", "version", "signatures", "added", "built")]
    for db in ordered:
        h = headers[db]
        built = h.build_time_rfc3339() or clean(h.build_time, 40)
        rows.append(
            (clean(db, 20), str(h.version), str(h.signatures), _added(db, h, previous), built)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = [
        "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    daily = headers.get("daily") or next(iter(headers.values()))
    builders = sorted({clean(h.builder, 60) for h in headers.values()})
    q = prop.from_start
    share = f"{q.served / q.total:.0%}" if q.total else "-"
    reached = ", ".join(f"{k} % in {span(q.get(k))}" for k in QUANTILES if q.get(k) is not None)
    lines = [
        "A new ClamAV database release is published and announced.",
        "",
        *table,
        "",
        f"Functionality level: {daily.functionality}",
        f"Built: {when(prop.built_at)} by {', '.join(builders)}",
        f"Publish began: {when(prop.started_at)}",
        "Announced in DNS (current.cvd.clamav.net TXT): "
        + (
            f"{when(prop.announced_at)}, {span(prop.announce_delay_s)} after the publish began"
            if prop.announced_at is not None
            else "not yet"
        ),
        f"Propagation at {when(now)}: {q.served} of {q.total} active mirrors serve it ({share})"
        + (f"; {reached}" if reached else ""),
        "",
        f"-- {clean(signature, 200)}",
        "",
    ]
    return Mail((to,), subject(headers), "\n".join(lines))
