"""A status site with 30 days of history, built from plain data around an injected `NOW`."""

from __future__ import annotations

from syncd.dns.gate import GateVerdict
from syncd.monitor.freshness import Check
from syncd.monitor.snapshot import Change
from syncd.statuspage.rows import MirrorStatus
from syncd.statuspage.site import (
    FamilyView,
    MirrorView,
    RunView,
    Site,
    Span,
    state_spans,
)

NOW = 1_800_000_000.0  # the data is laid around it, never compared to the clock (noqa: date)
HOUR, DAY = 3600.0, 86_400.0
RELEASE = {"bytecode": 339, "daily": 28034, "main": 62}


def hourly(days: float, *, delay_h: float = 1.5, fail_every: int = 0) -> tuple[Check, ...]:
    """A check every hour for `days` up to NOW: the heartbeat's saw-tooth delay, and every
    `fail_every`-th check failed."""
    out = []
    n = int(days * 24)
    for k in range(n, 0, -1):
        at = NOW - k * HOUR + 60
        if fail_every and k % fail_every == 0:
            out.append(Check(at, False, error="/timestamp timed out (IPv6)"))
            continue
        delay = (k % 3) * HOUR + delay_h * HOUR * ((k // 24) % 2)
        out.append(Check(at, True, at - delay - 300, RELEASE))
    return tuple(out)


def status(name: str, state: str, score: float | None, **kw: object) -> MirrorStatus:
    base: dict[str, object] = dict(
        country="PL",
        since=NOW - 5 * DAY,
        age_s=1800.0,
        served=dict(RELEASE),
        completion_24h=1.0,
        completion_7d=0.98,
        mean_delay_7d_s=5400.0,
        last_push="ok",
        reason="first check: serves the current release",
    )
    base.update(kw)
    return MirrorStatus(name=name, state=state, score=score, **base)  # type: ignore[arg-type]


def runs(n: int, outcome: str = "ok") -> tuple[RunView, ...]:
    return tuple(
        RunView(
            f"r{k:04d}-{'heartbeat' if k % 2 else 'release'}",
            "heartbeat" if k % 2 else "release",
            NOW - k * 3 * HOUR,
            NOW - k * 3 * HOUR + 40,
            outcome if k else "ok",
            1 if outcome == "ok" else 3,
            None if outcome == "ok" else "ssh: connection refused after 3 attempts",
        )
        for k in range(n)
    )


def sample_site(*extra: MirrorView) -> Site:
    good = MirrorView(
        status("clamav.mirror.example.org", "fresh", 1.84, country="DE", since=NOW - 20 * DAY),
        host="clamav.mirror.example.org",
        http="http://clamav.mirror.example.org",
        admins=("Jane Doe <jane@example.org>",),
        families=(
            FamilyView(
                "IPv4",
                "fresh",
                NOW - 20 * DAY,
                hourly(30),
                state_spans([(NOW - 40 * DAY, "unknown", "fresh")], "fresh", NOW),
            ),
            FamilyView(
                "IPv6",
                "fresh",
                NOW - 2 * DAY,
                hourly(30, delay_h=2.5, fail_every=29),
                state_spans(
                    [
                        (NOW - 40 * DAY, "unknown", "fresh"),
                        (NOW - 9 * DAY, "fresh", "unreachable"),
                        (NOW - 8.5 * DAY, "unreachable", "fresh"),
                        (NOW - 3 * DAY, "fresh", "lagging"),
                        (NOW - 2 * DAY, "lagging", "fresh"),
                    ],
                    "fresh",
                    NOW,
                ),
            ),
        ),
        runs=runs(12),
        changes=(
            Change("IPv6", NOW - 2 * DAY, "lagging", "fresh", "serves the current release"),
            Change(
                "IPv6",
                NOW - 3 * DAY,
                "fresh",
                "lagging",
                "serves daily 28033 instead of daily 28034, 3.5 h after the release",
            ),
        ),
    )
    lagging = MirrorView(
        status(
            "a-rather-long-mirror-name-for-a-narrow-phone.university.example.edu",
            "lagging",
            7.25,
            country="BR",
            since=NOW - 6 * HOUR,
            completion_24h=0.75,
            completion_7d=0.81,
            served={"bytecode": 339, "daily": 28033, "main": 62},
            last_push="timeout",
            reason="serves daily 28033 instead of daily 28034, 6.0 h after the release",
        ),
        host="203.0.113.7",
        http="http://a-rather-long-mirror-name-for-a-narrow-phone.university.example.edu/clamav",
        admins=("Mirror Team <mirror@university.example.edu>", "noc@university.example.edu"),
        families=(
            FamilyView(
                "IPv4",
                "lagging",
                NOW - 6 * HOUR,
                hourly(30, delay_h=4, fail_every=7),
                (
                    Span(NOW - 30 * DAY, NOW - 6 * HOUR, "fresh"),
                    Span(NOW - 6 * HOUR, NOW, "lagging"),
                ),
            ),
        ),
        runs=runs(8, "timeout"),
    )
    removed = MirrorView(
        status(
            "old.example.net",
            "removed",
            None,
            country="US",
            since=NOW - 1 * DAY,
            age_s=50 * HOUR,
            completion_24h=0.0,
            completion_7d=0.1,
            mean_delay_7d_s=None,
            last_push="unreachable",
            reason="timestamp is 50.0 h old (limit 48.0 h)",
        ),
        families=(
            FamilyView(
                "IPv4",
                "removed",
                NOW - DAY,
                hourly(3, fail_every=2),
                state_spans(
                    [(NOW - 3 * DAY, "unknown", "old"), (NOW - DAY, "old", "removed")],
                    "removed",
                    NOW,
                ),
            ),
        ),
    )
    disabled = MirrorView(
        status(
            "retired.example.com",
            "disabled",
            None,
            country="-",
            since=None,
            age_s=None,
            served={},
            completion_24h=None,
            completion_7d=None,
            mean_delay_7d_s=None,
            last_push=None,
            reason="",
        )
    )
    gate = GateVerdict(
        reached=False,
        share=0.5,
        serving=(),
        laggards=(
            "a-rather-long-mirror-name-for-a-narrow-phone.university.example.edu",
            "old.example.net",
        ),
        empty_countries=(),
        reason="2 of 4 mirrors serve the release (50% < 90%)",
        required=0.9,
    )
    return Site(NOW, RELEASE, NOW - 6 * HOUR, gate, (good, lagging, removed, disabled, *extra))


HOSTILE = '<script>alert("x")</script>\'"></svg><svg onload=alert(1)>javascript:alert(2)'


def hostile_mirror() -> MirrorView:
    """A mirror whose every string from the inventory or the network is an attack."""
    return MirrorView(
        status(
            f"evil{HOSTILE}",
            "unreachable",
            3.0,
            country=f"X{HOSTILE}",
            last_push=f"ok{HOSTILE}",
            reason=f"3 failed checks in a row: {HOSTILE}",
            served={f"daily{HOSTILE}": 1},
        ),
        host=f'evil.example" onmouseover="alert(3){HOSTILE}',
        http="javascript:alert(document.cookie)//http://x",
        admins=(f"{HOSTILE} <a@example.org>", HOSTILE),
        families=(
            FamilyView(
                f"IPv4{HOSTILE}",
                "unreachable",
                NOW - HOUR,
                (
                    Check(NOW - 2 * HOUR, True, NOW - 3 * HOUR, RELEASE),
                    Check(NOW - HOUR, False, error=f"</title></svg>{HOSTILE}"),
                ),
                (Span(NOW - 2 * HOUR, NOW, f"unreachable{HOSTILE}"),),
            ),
        ),
        runs=(
            RunView(
                f"run{HOSTILE}", f"release{HOSTILE}", NOW - HOUR, None, f"x{HOSTILE}", 2, HOSTILE
            ),
        ),
        changes=(Change(f"IPv4{HOSTILE}", NOW - HOUR, "fresh", f"bad{HOSTILE}", HOSTILE),),
    )
