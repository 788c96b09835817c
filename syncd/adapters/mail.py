"""Send :class:`~syncd.core.announce.Mail` over SMTP (STARTTLS and login when configured)."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterable, Sequence
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
    """Send `mails` over one SMTP session; return how many went out; raise MailError when
    any did not (the others are sent all the same)."""
    errors = send_each(mails, settings)
    failed = [e for e in errors if e is not None]
    if failed:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise MailError(failed[0] + more)
    return len(errors)


def send_each(mails: Iterable[Mail], settings: SmtpSettings) -> list[str | None]:
    """Send `mails` over one SMTP session; return, for each, None when it went out or why it
    did not. A mail that cannot be written (a recipient with a newline, say) is not sent and
    stops no other; a server that cannot be reached fails them all."""
    batch = list(mails)
    if not batch:
        return []
    errors: list[str | None] = []
    messages: list[EmailMessage | None] = []
    for mail in batch:
        try:
            messages.append(to_message(mail, settings.sender))
            errors.append(None)
        except (ValueError, TypeError) as err:  # email refuses a header holding a newline
            messages.append(None)
            errors.append(f"mail to {_shown(mail.to)} not sent: {err}")
    if not any(messages):
        return errors
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s) as smtp:
            smtp.ehlo()
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=settings.cafile))
                smtp.ehlo()
            if settings.username:
                smtp.login(settings.username, settings.password or "")
            for i, msg in enumerate(messages):
                if msg is None:
                    continue
                try:
                    smtp.send_message(msg)
                except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError) as err:
                    errors[i] = f"mail to {_shown(batch[i].to)} refused: {_hidden(err, settings)}"
    except (OSError, smtplib.SMTPException) as err:
        detail = _hidden(err, settings)
        raise MailError(f"mail via {settings.host}:{settings.port} failed: {detail}") from None
    return errors


def _shown(to: Sequence[str]) -> str:
    return repr(", ".join(to))[:120]


def _hidden(err: BaseException, settings: SmtpSettings) -> str:
    detail = str(err)
    if settings.password:
        detail = detail.replace(settings.password, "***")
    return detail
