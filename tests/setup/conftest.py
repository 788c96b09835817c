"""Fixtures of the setup tests: temp homes the non-root mirror account can reach."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.client import build_client_zipapp


@pytest.fixture(scope="session")
def setup_tmp_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="setup-tests-"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def tmp_path(request: pytest.FixtureRequest, setup_tmp_root: Path) -> Path:
    """A per-test directory outside /tmp/pytest-of-<user>, which any pytest starting on this
    machine resets to 0700: the mirror account (``runuser``) must reach what is below."""
    name = re.sub(r"\W", "_", request.node.name)[:40]
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=setup_tmp_root))
    path.chmod(0o711)
    return path


@pytest.fixture(scope="session")
def client_zipapp(setup_tmp_root: Path) -> Path:
    """The client zipapp, built where the mirror account can reach it."""
    return build_client_zipapp(setup_tmp_root / "client")
