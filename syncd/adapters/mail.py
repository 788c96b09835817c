"""Send :class:`~syncd.core.announce.Mail` over SMTP (STARTTLS and login when configured)."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from syncd.core.announce import Mail
from syncd.core.errors import EXIT_FAILED, SyncdError


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    sender: str = "mirror-monitor@localhost"
    starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never printed
    timeout_s: float = 30.0
    cafile: str | None = None


class MailError(SyncdError, RuntimeError):
    """The mail server refused or could not be reached; the message never holds a password."""

    exit_code = EXIT_FAILED


def to_message(mail: Mail, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(mail.to)
    msg["Subject"] = mail.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="pushsync")
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(mail.body)
    return msg


def send_all(mails: Iterable[Mail], settings: SmtpSettings) -> int:
    """Send `mails` over one SMTP session; return how many went out."""
    batch = list(mails)
    if not batch:
        return 0
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s) as smtp:
            smtp.ehlo()
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=settings.cafile))
                smtp.ehlo()
            if settings.username:
                smtp.login(settings.username, settings.password or "")
            for mail in batch:
                smtp.send_message(to_message(mail, settings.sender))
    except (OSError, smtplib.SMTPException) as err:
        detail = str(err)
        if settings.password:
            detail = detail.replace(settings.password, "***")
        raise MailError(f"mail via {settings.host}:{settings.port} failed: {detail}") from None
    return len(batch)
