"""What the status site shows of a mirror's https certificate (`syncd.monitor.certs`): a cell
of the overview, a section of the mirror's page, its part of ``status.json``. Pure; every
value from the certificate or the mirror is cleaned and escaped (`svgplot.esc`)."""

from __future__ import annotations

from typing import Any

from syncd.monitor.certs import DAY, CertStatus
from syncd.release.announcement import when
from syncd.statuspage.svgplot import STATE_COLOURS, UNKNOWN_COLOUR, ago, esc, iso

# a certificate's state, coloured as the freshness state that reads alike
COLOUR_OF = {
    "ok": "fresh",
    "expiring": "old",
    "failed": "unreachable",
    "invalid": "removed",
    "not_yet_valid": "removed",
    "expired": "removed",
}
CERT_TEXT = (
    "HTTPS: for a mirror with an https URL, the certificate freshclam 0.102 and later meet "
    "when a user names the mirror itself (DatabaseMirror NAME means https://NAME): it must "
    "chain to a CA of the usual stores, name the mirror, and be within its dates. Its admins "
    "are mailed 14, 7 and 1 days before it expires, and when it is refused. It never takes "
    "the mirror out of DNS rotation: freshclam reaches db.XY.clamav.net over http."
)


def _badge(cert: CertStatus, text: str) -> str:
    colour = STATE_COLOURS.get(COLOUR_OF.get(cert.state, ""), UNKNOWN_COLOUR)
    shown = esc(text)
    return f'<span class="st" style="--c:{colour}" title="{shown}">{shown}</span>'


def _days(cert: CertStatus, now: float) -> str:
    left = cert.days_left(now)
    if left is None:
        return ""
    return f" {left:.0f} d" if left >= 1 else f" {max(left, 0.0) * 24:.0f} h"


def cert_cell(cert: CertStatus | None, now: float) -> str:
    """The overview's cell: the state and the days left, or "-" without an https URL."""
    if cert is None:
        return "-"
    shown = cert.state.replace("_", " ")
    if cert.state in ("ok", "expiring"):
        shown += _days(cert, now)
    return _badge(cert, shown)


def cert_section(cert: CertStatus | None, now: float) -> list[str]:
    """The mirror page's section on its certificate."""
    out = ["<h2>HTTPS certificate</h2>"]
    if cert is None:
        out.append("<p>No https URL in the inventory: not checked.</p>")
        return out
    checked = f"checked {esc(ago(cert.at, now))} at {esc(cert.url)}"
    out.append(f"<p>{_badge(cert, cert.state.replace('_', ' '))} {checked}.</p>")
    if cert.problems:
        out.append("<ul>" + "".join(f"<li>{esc(p)}</li>" for p in cert.problems) + "</ul>")
    if cert.fingerprint is not None and cert.not_after is not None:
        names = ", ".join(cert.names) or "no name"
        valid = f"valid {when(cert.not_before)} to " if cert.not_before is not None else ""
        out.append(
            f"<p>For {esc(names)}; issued by {esc(cert.issuer or '?')}; "
            f"{esc(valid)}{esc(when(cert.not_after))}; SHA-256 "
            f"<code>{esc(cert.fingerprint)}</code>.</p>"
        )
    out.append(f'<p class="note">{esc(CERT_TEXT)}</p>')
    return out


def cert_json(cert: CertStatus | None, now: float) -> dict[str, Any] | None:
    """A mirror's ``certificate`` in status.json (null without an https URL)."""
    if cert is None:
        return None
    left = cert.days_left(now)
    return {
        "url": cert.url,
        "state": cert.state,
        "valid": cert.valid,
        "checked_at": iso(cert.at),
        "not_before": iso(cert.not_before),
        "not_after": iso(cert.not_after),
        "expires_in_s": None if left is None else round(left * DAY),
        "names": list(cert.names),
        "issuer": cert.issuer,
        "sha256": cert.fingerprint,
        "problems": list(cert.problems),
    }
