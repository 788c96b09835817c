"""Fault suite fixtures: a soak fleet under a root outside /tmp/pytest-of-<user>."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from devtools.harness.soak import CI_MIRRORS, CI_SEED, SoakFleet, soak_root

SEED = int(os.environ.get("SOAK_SEED", str(CI_SEED)))


@pytest.fixture
def soak_fleet() -> Iterator[SoakFleet]:
    root = soak_root()
    fleet = SoakFleet(root, CI_MIRRORS, SEED)
    print(
        f"soak seed {SEED}, root {root}; replay round N alone: "
        f"python -m benchmarks.soak --replay {SEED}:N"
    )
    try:
        yield fleet.start()
    finally:
        fleet.close()
        shutil.rmtree(root, ignore_errors=True)
