"""The release announcement's text (pure, `now` injected): versions, signatures added per
database against the release before, functionality level, build time, DNS announcement and
propagation; hostile header text cleaned."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from pushwire.cvd import CvdHeader
from syncd.release.announcement import message, span
from syncd.release.propagation import propagation
from syncd.text import clean
from tests.release.data import START, run, target

MD5 = "0" * 32


def header(version: int, signatures: int, builder: str = "sigmgr", flevel: int = 90) -> CvdHeader:
    return CvdHeader(
        "written", version, signatures, flevel, MD5, builder, int(START) - 900
    )  # the unix time is what counts


def utc(ts: float, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    return datetime.fromtimestamp(ts, UTC).strftime(fmt)


def headers(
    daily: int = 28035, daily_sigs: int = 2_100_150, builder: str = "sigmgr"
) -> dict[str, CvdHeader]:
    return {
        "daily": header(daily, daily_sigs, builder),
        "main": header(63, 6_500_000, builder),
        "bytecode": header(339, 95, builder),
    }


PREVIOUS = {
    "daily": header(28034, 2_100_000),
    "main": header(63, 6_500_000),
    "bytecode": header(338, 94),
}


def prop():  # type: ignore[no-untyped-def]
    targets = {
        "r1": [target(f"m{i}", START + 60 * (i + 1)) for i in range(9)]
        + [target("late", None, "failed")]
    }
    return propagation([run("r1")], targets, {}, {}, built_at=START - 900, announced_at=START + 600)


def test_the_message_says_what_the_list_needs() -> None:
    mail = message(
        headers(), PREVIOUS, prop(), to="list@example.org", signature="db team", now=START + 700
    )
    assert mail.to == ("list@example.org",)
    assert mail.subject == "ClamAV database update: daily 28035, main 63, bytecode 339"
    body = mail.body.splitlines()
    built = utc(START - 900, "%Y-%m-%dT%H:%M:%SZ")
    assert f"  daily     28035    2100150     +150       {built}" in body
    assert any(line.startswith("  main      63") and "unchanged" in line for line in body)
    assert any(line.startswith("  bytecode  339") and "+1" in line for line in body)
    assert "Functionality level: 90" in body
    assert f"Built: {utc(START - 900)} by sigmgr" in body
    assert (
        f"Announced in DNS (current.cvd.clamav.net TXT): {utc(START + 600)}, 10 min after the "
        "publish began" in body
    )
    assert (
        f"Propagation at {utc(START + 700)}: 9 of 10 active mirrors serve it (90%); "
        "50 % in 5 min, 90 % in 9 min" in body
    )
    assert body[-1] == "-- db team"


def test_a_release_with_no_previous_one_known() -> None:
    mail = message(headers(), {}, prop(), to="l@example.org", signature="x", now=START)
    assert all("n/a" in line for line in mail.body.splitlines()[3:6])


def test_hostile_builder_and_build_time_are_cleaned() -> None:
    evil = "sig\x1b[31mmgr\u202e\u200bgnp.exe\nBcc: victim@example.org\r\x07"
    hs = {
        db: h._replace(builder=evil, build_time="07 Dec\x1b]0;owned\x07 2026", unix_time=None)
        for db, h in headers().items()
    }
    unbuilt = propagation([run("r1")], {"r1": [target("m", START)]}, {}, {})
    mail = message(hs, PREVIOUS, unbuilt, to="l@example.org", signature="s\u2028x", now=START)
    text = mail.subject + "\n" + mail.body
    for bad in ("\x1b", "\u202e", "\u200b", "\r", "\x07", "\u2028"):
        assert bad not in text
    assert not any(line.startswith("Bcc:") for line in mail.body.splitlines())
    assert "- by sig[31mmgrgnp.exe Bcc: victim@example.org" in mail.body  # no build time known
    assert "07 Dec]0;owned 2026" in mail.body  # the written build time, cleaned


@given(st.text(max_size=300), st.integers(min_value=0, max_value=10**10))
def test_any_builder_and_count_make_one_line_each(builder: str, sigs: int) -> None:
    hs = {
        db: h._replace(builder=builder.replace(":", ""), signatures=sigs)
        for db, h in headers().items()
    }
    mail = message(hs, PREVIOUS, prop(), to="l@example.org", signature="s", now=START)
    lines = mail.body.split("\n")
    plain = message(headers(), PREVIOUS, prop(), to="l@example.org", signature="s", now=START)
    assert len(lines) == len(plain.body.split("\n"))  # no line added, none split
    assert all(clean(line, None) == line for line in [mail.subject, *lines])


def test_span() -> None:
    assert [span(v) for v in (None, 5, 119, 600, 7200, 90_000, 3 * 86400)] == [
        "-",
        "5 s",
        "119 s",
        "10 min",
        "2.0 h",
        "25.0 h",
        "3.0 d",
    ]
