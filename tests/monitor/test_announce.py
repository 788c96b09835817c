"""Announcements: what admins and the team read, and that it arrives over real SMTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.harness.smtp import SmtpSink, self_signed_context
from syncd.monitor.announce import (
    MirrorChange,
    digest,
    may_send,
    mirror_mail,
    recipients,
    worth_mailing,
)
from syncd.monitor.freshness import State, Transition
from syncd.monitor.mail import MailError, SmtpSettings, send_each

AT = 1_800_000_000.0


def change(new: State, old: State = State.FRESH, notify: str | None = None) -> MirrorChange:
    t = Transition(old, new, AT, "timestamp is 25.0 h old (limit 24.0 h)")
    return MirrorChange(
        "mirror.example.org", t, ("Jo Admin <jo@example.org>",), (notify,) if notify else ()
    )


def test_mirror_mail_says_what_and_what_to_check() -> None:
    mail = mirror_mail(change(State.OLD))
    assert mail.to == ("Jo Admin <jo@example.org>",)
    assert mail.subject == "[ClamAV mirror] mirror.example.org: old"
    assert "from fresh to old" in mail.body
    assert "25.0 h old" in mail.body
    assert "clam-clientsync --doctor" in mail.body


def test_notify_address_wins_and_recovery_is_named() -> None:
    c = change(State.FRESH, old=State.REMOVED, notify="alerts@example.org")
    assert recipients(c) == ("alerts@example.org",)
    assert mirror_mail(c).subject.endswith(": recovered")


def test_digest_lists_every_change_worst_first() -> None:
    mail = digest(
        [change(State.FRESH, State.OLD), change(State.REMOVED, State.OLD)], ["team@example.org"], AT
    )
    assert mail is not None
    body_lines = [ln for ln in mail.body.splitlines() if ln.startswith("- ")]
    assert "removed" in body_lines[0] and "recovered" in body_lines[1]
    assert mail.subject == "[ClamAV mirrors] problems: 1 fresh, 1 removed"
    assert digest([], ["team@example.org"], AT) is None


def test_first_check_is_no_change_and_mails_only_a_problem() -> None:
    first_old = change(State.OLD, old=State.UNKNOWN)
    first_fresh = change(State.FRESH, old=State.UNKNOWN)
    assert worth_mailing(first_old) and not worth_mailing(first_fresh)
    body = mirror_mail(first_old).body
    assert "checked for the first time" in body and "it is old" in body
    assert "from fresh" not in body and "from unknown" not in body
    assert not first_fresh.transition.recovered
    mail = digest([first_fresh, first_fresh, first_old], ["team@example.org"], AT)
    assert mail is not None
    listed = [ln for ln in mail.body.splitlines() if ln.startswith("- ")]
    assert len(listed) == 1 and "old" in listed[0]
    assert "2 mirror(s) checked for the first time: fresh." in mail.body
    only_fresh = digest([first_fresh], ["team@example.org"], AT)
    assert only_fresh is not None and "first checks" in only_fresh.subject
    assert "recover" not in only_fresh.body


@pytest.mark.parametrize(
    ("last", "now", "ok"), [(None, AT, True), (AT - 100, AT, False), (AT - 7200, AT, True)]
)
def test_rate_limit(last: float | None, now: float, ok: bool) -> None:
    assert may_send(last, now, 3600) is ok


def test_mail_arrives_over_plain_smtp(smtp_sink: SmtpSink) -> None:
    mails = [
        mirror_mail(change(State.UNREACHABLE)),
        digest([change(State.UNREACHABLE)], ["team@example.org"], AT),
    ]
    errors = send_each(
        [m for m in mails if m],
        SmtpSettings(smtp_sink.host, smtp_sink.port, sender="monitor@example.org"),
    )
    assert errors == [None, None]
    assert [m["Subject"] for m in smtp_sink.messages] == [
        "[ClamAV mirror] mirror.example.org: unreachable",
        "[ClamAV mirrors] problems: 1 unreachable",
    ]
    assert smtp_sink.envelopes[0] == ("monitor@example.org", ["jo@example.org"])
    assert "both IPv4 and IPv6" in smtp_sink.messages[0].get_content()


def test_starttls_and_login(tmp_path: Path) -> None:
    ctx, cafile = self_signed_context(tmp_path)
    with SmtpSink(tls_context=ctx, credentials=("monitor", "pw-Secret-1")) as sink:
        settings = SmtpSettings(
            sink.host,
            sink.port,
            starttls=True,
            username="monitor",
            password="pw-Secret-1",
            cafile=cafile,
        )
        assert send_each([mirror_mail(change(State.OLD))], settings) == [None]
        assert len(sink.messages) == 1
        wrong = SmtpSettings(
            sink.host,
            sink.port,
            starttls=True,
            username="monitor",
            password="not-it-42",
            cafile=cafile,
        )
        with pytest.raises(MailError) as err:
            send_each([mirror_mail(change(State.OLD))], wrong)
        assert "not-it-42" not in str(err.value)
        assert "not-it-42" not in repr(wrong)
        # without STARTTLS the server refuses to go on
        with pytest.raises(MailError):
            send_each(
                [mirror_mail(change(State.OLD))],
                SmtpSettings(sink.host, sink.port, username="monitor", password="pw-Secret-1"),
            )
        assert len(sink.messages) == 1
