"""A mirror's https certificate judged, and when its admins hear of it. Pure: what a handshake
showed (`syncd.httpcheck.tls.TlsAnswer`), the name, `now` and what was already mailed in; a
verdict and at most one mail out.

The rules:

- **What is checked** is what freshclam meets when a user writes the mirror's own name
  (``DatabaseMirror clamav.example.org``, or ``https://...``): the chain to a CA of the
  system's store (OpenSSL's verdict), the name of the inventory's ``https`` URL (the mirror's
  own name), the dates. ``db.XY.clamav.net`` and ``database.clamav.net`` are not asked for: no
  mirror can hold a certificate for them (docs/operators-guide.md, "HTTPS").
- **States**, worst first: `expired`, `not_yet_valid`, `invalid` (the chain or the name),
  `failed` (no certificate read: no TLS on the port, no answer in time, too many bytes),
  `expiring` (valid, and the first warning is due: within the largest of `warn_days`), `ok`.
- **Mail**, to the mirror's admins, once per certificate (its SHA-256) and key: one key per
  warning threshold (``14d``, ``7d``, ``1d`` by default: the smallest one the days left have
  reached, so a certificate first seen 6 days before its end gets the 7-day mail only), and
  one each for `expired`, `not_yet_valid` and `invalid`. A renewed certificate is another
  one: its warnings start afresh. `failed` is shown, never mailed (a network's fault is
  not the certificate's, and it comes and goes).
- **Never DNS.** Nothing here touches the rotation: freshclam reaches the ``db.XY`` pools
  over http, whatever the mirror's https does.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from syncd.httpcheck.certificate import CertFacts, covers
from syncd.monitor.announce import Mail

DAY = 86_400.0
WARN_DAYS: tuple[int, ...] = (14, 7, 1)
STATES: tuple[str, ...] = ("ok", "expiring", "failed", "invalid", "not_yet_valid", "expired")
VALID = ("ok", "expiring")

# OpenSSL's verify codes (X509_V_ERR_*) that are about the dates alone: judged from `now`
CERT_NOT_YET_VALID, CERT_HAS_EXPIRED, HOSTNAME_MISMATCH = 9, 10, 62
_CHAIN = {
    7: "its signature does not verify with its issuer's key",
    2: "its issuer's certificate is missing from the chain",
    18: "it is self-signed",
    19: "its chain ends in a self-signed certificate no CA store trusts",
    20: "its chain does not lead to a trusted CA (an intermediate missing, or an unknown CA)",
    21: "its chain does not lead to a trusted CA (an intermediate missing, or an unknown CA)",
}


@dataclass(frozen=True)
class CertSeen:
    """One check of a mirror's https: the URL's host and port, and what the handshake showed."""

    mirror: str
    host: str
    port: int
    at: float
    cert: CertFacts | None = None
    verify_code: int | None = None  # OpenSSL's refusal; None: the chain and name verified
    verify_error: str | None = None
    failure: str | None = None  # no certificate read: why


@dataclass(frozen=True)
class CertStatus:
    """A mirror's certificate as judged at `at`: what the record keeps and the page shows."""

    mirror: str
    url: str
    at: float
    state: str  # one of STATES
    problems: tuple[str, ...] = ()
    fingerprint: str | None = None
    not_before: float | None = None
    not_after: float | None = None
    names: tuple[str, ...] = ()
    issuer: str = ""

    @property
    def valid(self) -> bool:
        return self.state in VALID

    def days_left(self, now: float) -> float | None:
        return None if self.not_after is None else (self.not_after - now) / DAY


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _left(seconds: float) -> str:
    days = seconds / DAY
    if days >= 2:
        return f"{round(days)} days"
    hours = max(0.0, seconds / 3600)
    return f"{hours:.0f} hours" if hours >= 1 else "less than an hour"


def _problems(seen: CertSeen, cert: CertFacts, now: float) -> tuple[list[str], str]:
    """The certificate's problems as freshclam's TLS would meet them, and the worst state."""
    problems: list[str] = []
    state = "ok"
    code = seen.verify_code
    if cert.not_after <= now or code == CERT_HAS_EXPIRED:
        problems.append(f"it expired on {_day(cert.not_after)}")
        state = "expired"
    elif cert.not_before > now or code == CERT_NOT_YET_VALID:
        problems.append(f"it is not valid before {_day(cert.not_before)}")
        state = "not_yet_valid"
    name_bad = code == HOSTNAME_MISMATCH or (
        code is not None
        and code not in (CERT_HAS_EXPIRED, CERT_NOT_YET_VALID)
        and not covers(cert.names, seen.host)
    )
    if name_bad:
        shown = ", ".join(cert.names[:5]) or "no name"
        problems.append(f"it is not valid for {seen.host} (it names {shown})")
    if code is not None and code not in (CERT_HAS_EXPIRED, CERT_NOT_YET_VALID, HOSTNAME_MISMATCH):
        problems.append(_CHAIN.get(code, f"OpenSSL refuses it: {seen.verify_error or code}"))
    if state == "ok" and problems:
        state = "invalid"
    return problems, state


def judge_cert(seen: CertSeen, now: float, warn_days: Sequence[int] = WARN_DAYS) -> CertStatus:
    """Given what a handshake showed and `now`, return the certificate's status."""
    url = f"https://{seen.host}" + ("" if seen.port == 443 else f":{seen.port}")
    cert = seen.cert
    if cert is None:
        why = seen.failure or "no certificate read"
        if seen.verify_error:
            why = f"{seen.verify_error}; {why}"
        return CertStatus(seen.mirror, url, seen.at, "failed", (why,))
    problems, state = _problems(seen, cert, now)
    left = cert.not_after - now
    if state == "ok" and warn_days and left <= max(warn_days) * DAY:
        state = "expiring"
        problems.append(f"it expires in {_left(left)}, on {_day(cert.not_after)}")
    return CertStatus(
        seen.mirror,
        url,
        seen.at,
        state,
        tuple(problems),
        cert.fingerprint,
        cert.not_before,
        cert.not_after,
        cert.names,
        cert.issuer,
    )


def mail_key(status: CertStatus, now: float, warn_days: Sequence[int] = WARN_DAYS) -> str | None:
    """The key of the one mail `status` is worth (see the rules above), None for none."""
    if status.fingerprint is None or status.state in ("ok", "failed"):
        return None
    if status.state != "expiring":
        return status.state
    left = status.days_left(now)
    reached = [d for d in warn_days if left is not None and left <= d]
    return f"{min(reached)}d" if reached else None


def due(
    status: CertStatus, now: float, mailed: Collection[str], warn_days: Sequence[int] = WARN_DAYS
) -> str | None:
    """Given the keys already mailed for `status`'s certificate, return the key to mail now,
    or None: each key goes once per certificate."""
    key = mail_key(status, now, warn_days)
    return None if key is None or key in mailed else key


ADVICE = {
    "expiring": (
        "Renew it before then (certbot renew, then reload the web server: certbot's "
        '--deploy-hook "systemctl reload nginx" does it after every renewal), or check that '
        "certbot's timer runs."
    ),
    "expired": (
        "freshclam refuses it: users who name your mirror over https get nothing from it "
        "until it is renewed (certbot renew, then reload the web server)."
    ),
    "not_yet_valid": (
        "freshclam refuses it until then: check the clock of the host that issued it, or "
        "serve the previous certificate meanwhile."
    ),
    "invalid": (
        "freshclam refuses it: serve the full chain (Let's Encrypt's fullchain.pem, not "
        "cert.pem), for your mirror's own name, from a CA of the usual stores."
    ),
}


def cert_mail(status: CertStatus, key: str, to: Sequence[str], now: float) -> Mail:
    """The admins' mail for `status` and its `key` (see `due`)."""
    left = status.days_left(now)
    what = {
        "expired": "has expired",
        "not_yet_valid": "is not valid yet",
        "invalid": "is refused by freshclam",
    }.get(status.state, f"expires in {_left((left or 0.0) * DAY)}")
    lines = [
        f"The https certificate of your ClamAV mirror {status.mirror} ({status.url}) {what}.",
        "",
        *(f"- {p}" for p in status.problems),
        "",
        f"Certificate: {status.fingerprint} (SHA-256), issued by {status.issuer or '?'},",
        f"for {', '.join(status.names[:10]) or 'no name'}.",
        *(
            [f"Valid from {_day(status.not_before)} until {_day(status.not_after)}."]
            if status.not_before is not None and status.not_after is not None
            else []
        ),
        "",
        ADVICE.get(status.state, ""),
        "",
        "Your mirror stays in the DNS rotation: freshclam reaches db.XY.clamav.net over http.",
        "This warning is sent once per certificate and threshold "
        f"({key}); a renewed certificate starts afresh.",
    ]
    return Mail(
        tuple(to),
        f"[clamav-mirror] {status.mirror}: https certificate {what}",
        "\n".join(lines),
    )
