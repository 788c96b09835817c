"""A mail that cannot be written (a recipient holding a newline) is that mail's failure: it
is reported, never raised as something else, and stops no other mail."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.harness.documents import write_secret
from devtools.harness.smtp import SmtpSink
from syncd.monitor.announce import Mail
from syncd.monitor.config import SmtpConfig
from syncd.monitor.mail import MailError, SmtpSettings, send_each, smtp_settings

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


def test_the_smtp_password_file_is_read_as_a_secret(tmp_path: Path) -> None:
    """Open to the group, the password file is refused in one line naming the fix, and the
    password is never in it; owner only, it is read (stripped)."""
    secret = write_secret(tmp_path / "smtp.password", "hunter2\n")
    smtp = SmtpConfig(username="monitor", password_file=secret)
    assert smtp_settings(smtp, "m@example.org").password == "hunter2"
    secret.chmod(0o640)
    with pytest.raises(MailError) as caught:
        smtp_settings(smtp, "m@example.org")
    message = str(caught.value)
    assert f"{secret} is open to group or others (mode 0640): run chmod 600" in message
    assert "hunter2" not in message and "\n" not in message
