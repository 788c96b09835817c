"""The release's announcement sent: once the TXT announces a release (the gate opened), mail
the ``[announce]`` list once, over the mail server of ``[monitor.smtp]``. Called at the end
of ``syncd publish`` and of every monitor pass; never raises, never blocks either: a failure
is recorded and returned (the summary, the JSON and stderr, the log, say it), and the next
publish or pass tries again while that release is the one the TXT announces. An flock keeps
two syncds from sending it together; the record says it was sent, so it is never sent twice."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pushwire.cvd import CvdHeader
from syncd.errors import SyncdError
from syncd.monitor.announce import Mail
from syncd.monitor.mail import MailError, SmtpSettings, send_each, smtp_settings
from syncd.release.announcement import message
from syncd.release.propagation import Propagation
from syncd.release.record import release_for, txt_sent, versions_text
from syncd.release.store import ReleaseStore, mail_lock
from syncd.release.tree import SourceTree
from syncd.settings import SyncdConfig
from syncd.sqlite import open_db
from syncd.text import clean

Sender = Callable[[Iterable[Mail], SmtpSettings], Sequence[str | None]]


@dataclass(frozen=True)
class Announced:
    """What the announcement step did: the release (its daily), whether its mail went out
    now, the error of a try that failed, or why nothing was tried (sent before, not
    announced in DNS yet, another syncd sending)."""

    daily: int | None
    sent: bool
    error: str | None = None
    skipped: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "daily": self.daily,
            "sent": self.sent,
            "error": self.error,
            "skipped": self.skipped,
        }

    def line(self) -> str:
        """One line for the summary."""
        what = f"daily {self.daily}" if self.daily is not None else "the release"
        if self.sent:
            return f"announcement of {what} mailed to the list"
        if self.error:
            return f"announcement of {what} not sent (retried next time): {self.error}"
        return f"announcement of {what}: {self.skipped}"


def record_release(state: Path, source: SourceTree, now: float) -> str | None:
    """Remember the release's CVD headers (what its announcement and the next one's compare);
    return why they could not be (the push is done whatever the record does), or None."""
    try:
        conn = open_db(state)
        try:
            ReleaseStore(conn).record_headers(source.headers, now)
        finally:
            conn.close()
    except (SyncdError, sqlite3.Error) as err:
        return clean(f"the release's headers not recorded: {err}", 300)
    return None


def announce_smtp(cfg: SyncdConfig) -> SmtpSettings:
    """[monitor.smtp] with the announcement's sender; raise MailError when it is missing."""
    if cfg.monitor.smtp is None:
        raise MailError("no [monitor.smtp] in syncd.toml: [announce] mails through it, add one")
    assert cfg.announce is not None
    return smtp_settings(cfg.monitor.smtp, cfg.announce.sender)


def announce_due(
    cfg: SyncdConfig,
    state: Path,
    *,
    now: float,
    send: Sender = send_each,
) -> Announced | None:
    """Mail the release the TXT announces now, unless it was mailed before; None without
    [announce]. Never raises: whatever fails is the result's error (and the log's)."""
    if cfg.announce is None:
        return None
    try:
        return _announce(cfg, state, now=now, send=send)
    except Exception as err:  # the publish or the pass is done whatever the mail does
        why = clean(f"{type(err).__name__}: {err}", 300)
        return Announced(None, False, error=why)


@dataclass(frozen=True)
class _Due:
    daily: int
    versions: dict[str, int]
    headers: dict[str, CvdHeader]
    prop: Propagation


def _due(conn: sqlite3.Connection, store: ReleaseStore) -> _Due | Announced:
    """The release the TXT announces, when its mail is due; else why nothing is to be sent."""
    txts = txt_sent(conn)
    if not txts:
        return Announced(None, False, skipped="no release announced in DNS yet")
    _, versions = max(txts, key=lambda t: t[0])
    daily = versions["daily"]
    done = store.mail(daily)
    why = None
    if done is not None and done.sent_at is not None:
        why = "mailed before"
    headers = store.headers(daily)
    if why is None and not headers:
        why = "its CVD headers are not in the record"
    prop = release_for(conn, versions) if why is None else None
    if why is None and prop is None:
        why = "no publish run pushed it"
    if why is not None or prop is None:
        return Announced(daily, False, skipped=why)
    return _Due(daily, versions, headers, prop)


def _announce(cfg: SyncdConfig, state: Path, *, now: float, send: Sender) -> Announced:
    assert cfg.announce is not None
    if not state.exists():
        return Announced(None, False, skipped="no record yet")
    conn = open_db(state)
    try:
        store = ReleaseStore(conn)
        due = _due(conn, store)
        if isinstance(due, Announced):
            return due
        with mail_lock(state) as held:
            again = _due(conn, store) if held else None  # sent meanwhile by the lock's holder?
            if not isinstance(again, _Due):
                return again or Announced(due.daily, False, skipped="another syncd is mailing it")
            mail = message(
                due.headers,
                store.previous_headers(due.daily),
                due.prop,
                to=cfg.announce.to,
                signature=cfg.announce.signature,
                now=now,
            )
            try:
                errors = list(send([mail], announce_smtp(cfg)))
                error = errors[0] if errors else "not sent"
            except MailError as err:
                error = str(err)
            versions = versions_text(due.versions)
            if error is None:
                store.mail_sent(due.daily, versions, now)
                return Announced(due.daily, True)
            error = clean(error, 300)
            store.mail_failed(due.daily, versions, now, error)
            return Announced(due.daily, False, error=error)
    finally:
        conn.close()
