"""A few releases' propagation to render (the status site, the metrics): plain values."""

from __future__ import annotations

from syncd.release.propagation import Propagation, propagation
from tests.release.data import RELEASE, START, attempt, run, target

HOSTILE_MIRROR = 'we"ird\x1b[2J\u202e<script>m'


def sample_releases(n: int = 30, *, now: float = START + 40 * 3600) -> tuple[Propagation, ...]:
    """`n` releases an hour apart, newest first: each proven on ten mirrors a minute apart but
    the newest, which one mirror (a hostile name) still misses."""
    out = []
    for i in range(n):
        started = now - (n - i) * 3600
        versions = {**RELEASE, "daily": RELEASE["daily"] + i}
        names = [f"m{k}.example" for k in range(9)] + [HOSTILE_MIRROR]
        last = i == n - 1
        targets = [
            target(name, None if last and k == 9 else started + 60 * (k + 1) * (1 + i % 3))
            for k, name in enumerate(names)
        ]
        out.append(
            propagation(
                [run(f"r{i}", started, versions)],
                {f"r{i}": targets},
                {f"r{i}": [attempt(f"r{i}", name, "rsync1.example") for name in names]},
                {},
                built_at=started - 300,
                announced_at=started + 600,
            )
        )
    return tuple(reversed(out))
