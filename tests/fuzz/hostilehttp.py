"""The hostile HTTP servers of the tests live in devtools.harness.hostilehttp (the benchmarks
use them too); this name stays for the tests that import it."""

from devtools.harness.hostilehttp import (
    NOT_FOUND,
    Answer,
    HostileHttp,
    RoutedHttp,
    answer,
    chunked_flood,
    endless,
    gzip_bomb,
)

__all__ = [
    "NOT_FOUND",
    "Answer",
    "HostileHttp",
    "RoutedHttp",
    "answer",
    "chunked_flood",
    "endless",
    "gzip_bomb",
]
