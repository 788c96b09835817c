"""The soak's faults are registered under the names the CLI and the record use, in the order
the seed shuffles: a seed replays the same faults in the same order (no servers needed)."""

from __future__ import annotations

from pathlib import Path

from devtools.harness.soak import FAULTS, REGISTRY, SoakFleet

NAMES = (
    "none",
    "ssh_stall",
    "ssh_drop",
    "ssh_delay",
    "rsync_stall",
    "rsync_drop",
    "rsync_refuse",
    "kill_syncd",
    "stop_syncd",
    "kill_client",
    "stop_client",
    "kill_rsync",
    "kill_sshd",
    "kill_rsyncd",
    "stop_rsyncd",
    "churn_source",
    "disk_full",
    "double_publish",
)


def test_registry_keeps_every_name_in_its_order() -> None:
    assert FAULTS == NAMES
    assert all(cls.name == name for name, cls in REGISTRY.items())


def test_the_ci_seed_replays_the_same_first_pass() -> None:
    fleet = SoakFleet(Path("/nonexistent"), 3, 20261125)  # the CI seed (tests/faults/conftest.py)
    order = [fleet.pick_fault(n, FAULTS) for n in range(len(FAULTS))]
    # drawn by the soak before its faults became classes: the same seed, the same order
    assert order == [
        "rsync_drop",
        "kill_rsync",
        "disk_full",
        "kill_sshd",
        "kill_rsyncd",
        "rsync_stall",
        "kill_client",
        "ssh_stall",
        "kill_syncd",
        "ssh_drop",
        "rsync_refuse",
        "churn_source",
        "double_publish",
        "ssh_delay",
        "stop_syncd",
        "stop_rsyncd",
        "stop_client",
        "none",
    ]
