"""A mail that cannot be written (a recipient holding a newline) is that mail's failure: it
is reported, never raised as something else, and stops no other mail."""

from __future__ import annotations

from devtools.harness.smtp import SmtpSink
from syncd.monitor.announce import Mail
from syncd.monitor.mail import SmtpSettings, send_each

BAD = Mail(("Jo <jo@example.org>\nBcc: everyone@example.org",), "[ClamAV mirror] m: old", "b")
GOOD = Mail(("ops@example.org",), "[ClamAV mirror] n: old", "body")


def test_a_bad_address_fails_its_mail_only(smtp_sink: SmtpSink) -> None:
    settings = SmtpSettings(smtp_sink.host, smtp_sink.port, sender="monitor@example.org")
    errors = send_each([BAD, GOOD], settings)
    assert errors[1] is None and errors[0] is not None
    assert "not sent" in errors[0] and "\n" not in errors[0], errors
    assert [m["Subject"] for m in smtp_sink.messages] == [GOOD.subject]
    assert all("everyone@example.org" not in str(m) for m in smtp_sink.messages)
    assert send_each([BAD, GOOD], settings)[0] is not None
    assert len(smtp_sink.messages) == 2  # the good one went out again, the bad one never
