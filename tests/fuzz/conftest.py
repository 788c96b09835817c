"""Hypothesis profiles for the fuzz suite: ``ci`` (default, modest) and ``long``.

Pick one with ``HYPOTHESIS_PROFILE=long pytest tests/fuzz``. Every parser here takes outside
input; each test asserts it ends in a value or the module's own error, never another exception.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile(
    "long",
    max_examples=5_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
