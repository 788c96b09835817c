"""The certificate's verdict and its warnings, pure: `now` and what was mailed passed in."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from syncd.httpcheck.certificate import CertFacts
from syncd.monitor.certs import (
    DAY,
    STATES,
    WARN_DAYS,
    CertSeen,
    cert_mail,
    due,
    judge_cert,
    mail_key,
)

NOW = 1_800_000_000.0  # a pinned clock; certificates are laid around it (noqa: date)


def facts(
    days_left: float, *, names: tuple[str, ...] = ("clamav.example.org",), fp: str = "a" * 64
) -> CertFacts:
    return CertFacts(fp, NOW - 60 * DAY, NOW + days_left * DAY, names, "CN=x", "CN=Test CA")


def seen(cert: CertFacts | None, code: int | None = None, error: str | None = None) -> CertSeen:
    return CertSeen("m.example", "clamav.example.org", 443, NOW, cert, code, error)


def test_a_valid_certificate_is_ok_until_the_first_threshold() -> None:
    ok = judge_cert(seen(facts(20)), NOW)
    assert (ok.state, ok.problems, ok.valid) == ("ok", (), True)
    assert ok.url == "https://clamav.example.org"
    soon = judge_cert(seen(facts(13)), NOW)
    assert soon.state == "expiring" and soon.valid
    assert len(soon.problems) == 1 and soon.problems[0].startswith("it expires in 13 days, on ")


def test_the_thresholds_go_once_each_and_a_late_start_skips_the_passed_ones() -> None:
    mailed: set[str] = set()
    sent = []
    for days in (20, 13, 12.9, 6, 5, 0.5, 0.4, -1, -2):
        status = judge_cert(seen(facts(days)), NOW)
        key = due(status, NOW, mailed)
        if key:
            mailed.add(key)
            sent.append((days, key))
    assert sent == [(13, "14d"), (6, "7d"), (0.5, "1d"), (-1, "expired")]
    # first seen 6 days before its end: the 7-day warning only, then the 1-day one
    assert mail_key(judge_cert(seen(facts(6)), NOW), NOW) == "7d"
    assert due(judge_cert(seen(facts(6)), NOW), NOW, {"7d"}) is None


def test_expired_by_the_clock_or_by_openssl() -> None:
    by_clock = judge_cert(seen(facts(-0.1)), NOW)
    assert by_clock.state == "expired" and not by_clock.valid
    assert by_clock.problems[0].startswith("it expired on ")
    by_openssl = judge_cert(seen(facts(-3), 10, "certificate has expired"), NOW)
    assert by_openssl.state == "expired" and len(by_openssl.problems) == 1


def test_not_yet_valid() -> None:
    cert = CertFacts("b" * 64, NOW + DAY, NOW + 90 * DAY, ("clamav.example.org",), "", "")
    status = judge_cert(seen(cert, 9, "certificate is not yet valid"), NOW)
    assert status.state == "not_yet_valid" and mail_key(status, NOW) == "not_yet_valid"


def test_a_wrong_name_and_an_untrusted_chain_are_invalid() -> None:
    wrong = judge_cert(seen(facts(40, names=("other.example.org",)), 62, "Hostname mismatch"), NOW)
    assert wrong.state == "invalid"
    assert wrong.problems == (
        "it is not valid for clamav.example.org (it names other.example.org)",
    )
    self_signed = judge_cert(seen(facts(40), 18, "self-signed certificate"), NOW)
    assert self_signed.problems == ("it is self-signed",)
    # OpenSSL stops at the chain; the name is checked here too: both are said
    both = judge_cert(seen(facts(40, names=("x.example",)), 20, "unable to get local issuer"), NOW)
    assert len(both.problems) == 2 and "not valid for" in both.problems[0]
    # an expiring certificate that is also refused: refused, no countdown
    bad_soon = judge_cert(seen(facts(3), 18, "self-signed certificate"), NOW)
    assert bad_soon.state == "invalid" and mail_key(bad_soon, NOW) == "invalid"


def test_no_certificate_read_is_failed_and_never_mailed() -> None:
    failed = judge_cert(CertSeen("m", "h", 8443, NOW, failure="no TLS"), NOW)
    assert failed.state == "failed" and failed.url == "https://h:8443"
    assert mail_key(failed, NOW) is None


def test_a_renewed_certificate_starts_afresh() -> None:
    old = judge_cert(seen(facts(6, fp="a" * 64)), NOW)
    new = judge_cert(seen(facts(6, fp="c" * 64)), NOW)
    mailed = {("a" * 64): {"14d", "7d"}}
    assert due(old, NOW, mailed.get(old.fingerprint or "", set())) is None
    assert due(new, NOW, mailed.get(new.fingerprint or "", set())) == "7d"


def test_the_mail_says_what_when_and_what_to_do() -> None:
    status = judge_cert(seen(facts(6)), NOW)
    mail = cert_mail(status, "7d", ("Admin <a@example.org>",), NOW)
    assert mail.to == ("Admin <a@example.org>",)
    assert mail.subject == "[clamav-mirror] m.example: https certificate expires in 6 days"
    assert "certbot renew" in mail.body
    assert "stays in the DNS rotation" in mail.body
    assert "a" * 64 in mail.body


@given(
    st.lists(st.floats(-30, 60, allow_nan=False), min_size=1, max_size=40),
    st.lists(st.integers(1, 60), min_size=1, max_size=4, unique=True),
)
def test_whatever_the_passes_see_each_key_goes_at_most_once(
    days: list[float], warn: list[int]
) -> None:
    """Passes at any times over one certificate (sorted: time goes one way) mail each key at
    most once, at most one per pass, never for a valid certificate outside the thresholds."""
    warn_days = sorted(warn, reverse=True)
    mailed: list[str] = []
    for left in sorted(days, reverse=True):
        status = judge_cert(seen(facts(left)), NOW, warn_days)
        assert status.state in STATES
        key = due(status, NOW, set(mailed), warn_days)
        if status.state == "ok":
            assert key is None and left > max(warn_days)
        if key is not None:
            mailed.append(key)
    assert len(mailed) == len(set(mailed)) <= len(warn_days) + 1


def test_the_default_thresholds() -> None:
    assert WARN_DAYS == (14, 7, 1)
