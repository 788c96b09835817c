"""Hypothesis settings for the fuzz suite: ``ci`` (default, modest) and ``long``.

Pick one with ``HYPOTHESIS_PROFILE=long pytest tests/fuzz``. Applied per test (``@FUZZ``), not
loaded globally, so the other suites' property tests keep their own settings.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "fuzz-ci",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile(
    "fuzz-long",
    max_examples=5_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
# prefixed: hypothesis has a built-in "ci" profile of its own, loaded when CI is detected
FUZZ = settings.get_profile("fuzz-" + os.environ.get("HYPOTHESIS_PROFILE", "ci"))
