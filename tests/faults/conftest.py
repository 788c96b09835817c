"""Fault suite fixtures: a soak fleet under a root outside /tmp/pytest-of-<user>."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from devtools.harness.soak import SoakFleet, soak_root

CI_SEED = int(os.environ.get("SOAK_SEED", "20261125"))


@pytest.fixture
def soak_fleet() -> Iterator[SoakFleet]:
    root = soak_root()
    fleet = SoakFleet(root, 3, CI_SEED)
    print(f"soak seed {CI_SEED} (SOAK_SEED=... to replay), root {root}")
    try:
        yield fleet.start()
    finally:
        fleet.close()
        shutil.rmtree(root, ignore_errors=True)
