"""One way to run a benchmark or a development tool: ``python -m NAME`` from the repository's
root, with nothing put on ``sys.path`` by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = [
    "benchmarks.bridge",
    "benchmarks.client_overhead",
    "benchmarks.contenders",
    "benchmarks.fanout",
    "benchmarks.hostile_http",
    "benchmarks.propagation_check",
    "benchmarks.publish_cpu",
    "benchmarks.served",
    "benchmarks.simpublish",
    "benchmarks.soak",
    "devtools.demo",
    "devtools.harness.simfleet",
]


@pytest.mark.parametrize("module", MODULES)
def test_runs_as_a_module(module: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"usage: python -m {module}"), out.stdout[:200]
