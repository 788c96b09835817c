"""Send :class:`~syncd.monitor.announce.Mail` over SMTP (STARTTLS and login when configured)."""

from __future__ import annotations

import io
import smtplib
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from syncd.errors import EXIT_FAILED, ConfigError, SyncdError
from syncd.files import read_secret_file
from syncd.inventory.addresses import parse_mailbox
from syncd.monitor.announce import Mail
from syncd.monitor.config import SmtpConfig


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


def smtp_settings(smtp: SmtpConfig, sender: str) -> SmtpSettings:
    """The SMTP settings of ``[monitor.smtp]``, sending as `sender`, its password read from
    its file as syncd reads every secret (`syncd.files.read_secret_file`: owner only, a
    regular file, bounded); raise MailError (one line, never holding the password) when the
    file cannot be read or is open to others."""
    password = None
    if smtp.password_file is not None:
        try:
            password = read_secret_file(smtp.password_file, "[monitor.smtp] password_file").strip()
        except ConfigError as err:
            raise MailError(str(err)) from None
    return SmtpSettings(
        smtp.host,
        smtp.port,
        sender,
        smtp.starttls,
        smtp.username,
        password,
        cafile=str(smtp.cafile) if smtp.cafile else None,
    )


def to_message(mail: Mail, sender: str) -> EmailMessage:
    """Given a mail, return the message to send; raise ValueError when it cannot be written.
    The ``To:`` header is rebuilt from each recipient's parsed address and cleaned display name
    (`syncd.inventory.addresses.parse_mailbox`), never copied: no name can add a recipient."""
    if not mail.to:
        raise ValueError("no recipient")
    boxes = [parse_mailbox(to) for to in mail.to]
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = [Address(display_name=b.name, addr_spec=b.addr) for b in boxes]
    msg["Subject"] = mail.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="pushsync")
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(mail.body)
    return msg


def _built(mail: Mail, sender: str) -> tuple[bytes, list[str]] | str:
    """The message's bytes as they go on the wire and its recipients' addresses, or why it
    cannot be written. Never raises: whatever goes wrong building one mail (a recipient with a
    newline, an address with no domain, a body the encoder refuses) is that mail's failure."""
    try:
        msg = to_message(mail, sender)
        out = io.BytesIO()
        BytesGenerator(out, policy=msg.policy.clone(linesep="\r\n")).flatten(msg)
        return out.getvalue(), [parse_mailbox(to).addr for to in mail.to]
    except Exception as err:  # any failure is this one mail's
        return f"mail to {_shown(mail.to)} not sent: {type(err).__name__}: {_line(err)}"


def send_each(mails: Iterable[Mail], settings: SmtpSettings) -> list[str | None]:
    """Send `mails` over one SMTP session; return, for each, None when it went out or why it
    did not. A mail that cannot be written (a recipient with a newline, say) is not sent and
    stops no other; a server that cannot be reached fails them all."""
    batch = list(mails)
    if not batch:
        return []
    errors: list[str | None] = []
    messages: list[tuple[bytes, list[str]] | None] = []
    for mail in batch:
        built = _built(mail, settings.sender)
        messages.append(None if isinstance(built, str) else built)
        errors.append(built if isinstance(built, str) else None)
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
                data, recipients = msg
                try:
                    smtp.sendmail(settings.sender, recipients, data)
                except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError) as err:
                    errors[i] = f"mail to {_shown(batch[i].to)} refused: {_hidden(err, settings)}"
    except (OSError, smtplib.SMTPException) as err:
        detail = _hidden(err, settings)
        raise MailError(f"mail via {settings.host}:{settings.port} failed: {detail}") from None
    return errors


def _shown(to: Sequence[str]) -> str:
    return repr(", ".join(to))[:120]


def _line(err: BaseException) -> str:
    return " ".join(str(err).split())[:200]


def _hidden(err: BaseException, settings: SmtpSettings) -> str:
    detail = str(err)
    if settings.password:
        detail = detail.replace(settings.password, "***")
    return detail
