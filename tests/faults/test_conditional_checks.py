"""Conditional checks still catch every fault planted on a mirror, on the very next pass.

A release tree is served by a real nginx; a check proves it (each release file read whole, each
CVD's tail compared) and the next check leans on what was proven (one Range request for the
last bytes of each release file and each CVD, trusted only under the validators proven). Then
one fault is planted in the served tree and the next check must see it: 100 trials, faults and
files drawn from a seeded generator, each caught (100 of 100). The same trials run against
servers that ignore conditional requests: nginx with ``etag off; if_modified_since off;
max_ranges 0;`` (200 and the whole file to everything) and a light server that answers every
Range from the file as it is now, whatever precondition it is sent: never a false fresh.

A touch (the file's time changed, its bytes not) is no fault: it must pass, and the pass after
it must be conditional again.

Proven able to fail: with `_conditional_problem` planted to trust a 206 without comparing its
bytes (and a CVD's last bytes not compared), the nginx trials missed 15 of 100 (every
`rewrite_tail_keep_mtime`); with a 206 whose validators changed trusted rather than read again
whole, the light server ignoring If-Range missed 3 of 35 (`rewrite_same_size` of .sign files).
Again with one request per CVD and no precondition sent: with the 206's validators not
compared (CVDs and release files), nginx missed 15 of 100, nginx with ``etag off`` and the
light server 5 of 35 each (every one `rewrite_same_size`).
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from devtools.harness.cvd import write_release_tree
from devtools.harness.nginx import Nginx
from devtools.harness.plainhttp import PlainHttp
from syncd.files import read_source_tree
from syncd.httpcheck.client import CheckFailed, Served, check, new_client, targets
from syncd.httpcheck.conditional import Proven
from syncd.release.tree import SourceTree

DAILY = 28034
TRIALS = 100
IGNORING_TRIALS = 35  # each kind of fault 5 times on each server that ignores conditionals
T0 = 1_900_000_000  # the served files' mtimes: any fixed second (noqa: date)


def _trees(tmp_path: Path) -> tuple[Path, Path, SourceTree]:
    """The source tree (the release, and the version before it for swaps) and its copy served."""
    source, older = tmp_path / "source", tmp_path / "older"
    write_release_tree(source, DAILY, cdiffs=3)
    write_release_tree(older, DAILY - 1, 61, 334, cdiffs=3)
    served = tmp_path / "htdocs"
    return source, served, read_source_tree(source)


def _restore(source: Path, served: Path, at: int) -> None:
    """Serve the release as it is in the source tree, every file's mtime `at`."""
    shutil.rmtree(served, ignore_errors=True)
    shutil.copytree(source, served)
    for p in served.iterdir():
        os.utime(p, (at, at))


def _touch(path: Path, at: int) -> None:
    os.utime(path, (at, at))


def _rewrite_same_size(path: Path, rng: random.Random, at: int) -> None:
    """One byte before the last 64 changed (beyond what a conditional pass compares): only
    the changed validators can tell."""
    data = bytearray(path.read_bytes())
    first = 512 if path.suffix == ".cvd" else 0
    i = rng.randrange(first, max(first + 1, len(data) - 64))
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    _touch(path, at)


def _rewrite_tail_keep_mtime(path: Path, rng: random.Random, at: int) -> None:
    """The last byte changed, size and mtime kept: nginx's ETag does not move."""
    before = path.stat().st_mtime
    data = bytearray(path.read_bytes())
    data[-1] ^= 1 + rng.randrange(255)
    path.write_bytes(bytes(data))
    os.utime(path, (before, before))


def _truncate(path: Path, rng: random.Random, at: int) -> None:
    size = path.stat().st_size
    floor = 513 if path.suffix == ".cvd" else 0  # a CVD keeps its header: the tail must see it
    os.truncate(path, rng.randrange(floor, size))
    _touch(path, at)


def _truncate_keep_mtime(path: Path, rng: random.Random, at: int) -> None:
    before = path.stat().st_mtime
    _truncate(path, rng, at)
    os.utime(path, (before, before))


def _grow(path: Path, rng: random.Random, at: int) -> None:
    with path.open("ab") as f:
        f.write(rng.randbytes(1 + rng.randrange(100)))
    _touch(path, at)


def _swap(path: Path, rng: random.Random, at: int, older: Path) -> None:
    """Replaced by the same file of the version before (a cdiff or .sign by the older one's)."""
    name = path.name
    for db, new, old in (("daily", DAILY, DAILY - 1), ("main", 62, 61), ("bytecode", 335, 334)):
        name = name.replace(f"{db}-{new}", f"{db}-{old}")
    shutil.copyfile(older / name, path)
    _touch(path, at)


def _delete(path: Path, rng: random.Random, at: int) -> None:
    path.unlink()


FAULTS: dict[str, Callable[[Path, random.Random, int], None]] = {
    "rewrite_same_size": _rewrite_same_size,
    "rewrite_tail_keep_mtime": _rewrite_tail_keep_mtime,
    "truncate": _truncate,
    "truncate_keep_mtime": _truncate_keep_mtime,
    "grow": _grow,
    "delete": _delete,
}
KINDS = [*FAULTS, "swap"]


def _caught(outcome: Served | str) -> bool:
    """Whether a check saw that the mirror does not serve the release (a failure, a version
    behind, or a file not served whole)."""
    if isinstance(outcome, str):
        return True
    return bool(outcome.incomplete) or outcome.versions != {
        "bytecode": 335,
        "daily": DAILY,
        "main": 62,
    }


@dataclass
class Checker:
    base_url: str
    tree: SourceTree

    def run(self, known: dict[str, Proven] | None) -> Served | str:
        async def one() -> Served | str:
            [target] = await targets(self.base_url, "db.pl.clamav.net")
            async with new_client(5.0, 2) as client:
                try:
                    return await check(
                        client,
                        target,
                        ["bytecode", "daily", "main"],
                        self.tree.files,
                        self.tree.tails,
                        known=known,
                    )
                except CheckFailed as err:
                    return str(err)

        return trio.run(one)


def _trials(
    tmp_path: Path,
    serve: Callable[[Path], AbstractContextManager[str]],
    seed: int,
    trials: int = TRIALS,
) -> Iterator[tuple[str, str, Served | str, Served | str]]:
    """Run `trials` seeded trials; yield (fault, file, the pass before it, the pass after)."""
    source, served, tree = _trees(tmp_path)
    older = tmp_path / "older"
    names = [f.name for f in tree.files] + [f"{t.db}.cvd" for t in tree.tails]
    rng = random.Random(seed)
    _restore(source, served, T0)
    with serve(served) as base_url:
        checker = Checker(base_url, tree)
        for trial in range(trials):
            at = T0 + 10 * trial
            _restore(source, served, at)
            first = checker.run({})  # proven whole
            assert isinstance(first, Served) and not _caught(first), first
            known = {p.name: p for p in first.proven}
            steady = checker.run(known)  # conditional, nothing planted: clean
            assert isinstance(steady, Served) and not _caught(steady), steady
            kind, name = KINDS[trial % len(KINDS)], rng.choice(names)
            path = served / name
            if kind == "swap":
                _swap(path, rng, at + 5, older)
            else:
                FAULTS[kind](path, rng, at + 5)
            after = checker.run({p.name: p for p in steady.proven})
            yield kind, name, steady, after


def _nginx(tmp_path: Path, **kw: object) -> Callable[[Path], AbstractContextManager[str]]:
    @contextmanager
    def serve(docroot: Path) -> Iterator[str]:
        with Nginx(tmp_path / "nginx", docroot, **kw) as web:  # type: ignore[arg-type]
            yield web.base_url

    return serve


def _plain(*, validators: bool = True) -> Callable[[Path], AbstractContextManager[str]]:
    @contextmanager
    def serve(docroot: Path) -> Iterator[str]:
        with PlainHttp(docroot, validators=validators) as web:
            yield web.base_url

    return serve


def _assert_all_caught(
    results: list[tuple[str, str, Served | str, Served | str]], proven: int | None, trials: int
) -> None:
    missed = [(kind, name, after) for kind, name, _, after in results if not _caught(after)]
    assert len(results) == trials
    assert {k for k, *_ in results} == set(KINDS)
    shown = [(kind, name) for kind, name, _ in missed[:8]]
    assert not missed, f"{len(missed)} of {trials} planted faults missed: {shown}"
    for _, _, steady, _ in results:  # what the conditional passes leaned on
        assert isinstance(steady, Served)
        assert len(steady.proven) == (proven if proven is not None else len(steady.proven))
        if proven == 0:
            assert steady.proven == ()


def test_nginx_every_planted_fault_is_caught_on_the_next_pass(tmp_path: Path) -> None:
    """Every release file and every CVD's tail is proven and leaned on in each steady pass
    (5 release files, 3 CVDs); every planted fault is caught on the pass after it."""
    results = list(_trials(tmp_path, _nginx(tmp_path), seed=2026))
    _assert_all_caught(results, proven=8, trials=TRIALS)


@pytest.mark.parametrize(
    ("server", "proven"),
    [
        ("nginx-etag-off", 8),
        ("light-server-ignoring-if-range", 8),
        ("light-server-no-validators", 0),
    ],
)
def test_a_server_ignoring_conditionals_never_yields_a_false_fresh(
    tmp_path: Path, server: str, proven: int
) -> None:
    """nginx with ``etag off; if_modified_since off;`` (Last-Modified only: the date is the
    validator), a server that answers every Range from the file as it is now whatever
    precondition it is sent (the validators tell the change), and one that sends no
    validator at all (read whole every pass): every planted fault caught."""
    serve = {
        "nginx-etag-off": _nginx(tmp_path, extra_locations=["etag off; if_modified_since off;"]),
        "light-server-ignoring-if-range": _plain(),
        "light-server-no-validators": _plain(validators=False),
    }[server]
    results = list(_trials(tmp_path, serve, seed=2027, trials=IGNORING_TRIALS))
    _assert_all_caught(results, proven=proven, trials=IGNORING_TRIALS)
