"""Run publish_main in this process a few times and print the open descriptors after each run
(a separate process: a publish loads trio_asyncio, which patches asyncio process-wide).

    python -m tests.publish.fdcheck SYNCD_TOML RUNS
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import psutil
import trio

from devtools.harness.cvd import DEFAULT_VERSIONS
from syncd.files import load_config, read_inventory
from syncd.publish.job import PublishJob, publish_main


def main() -> None:
    config, _ = load_config(Path(sys.argv[1]))
    assert config.key and config.state and config.inventory
    me = psutil.Process()
    before = me.num_fds()
    counts = []
    outcomes = []
    for _ in range(int(sys.argv[2])):
        job = PublishJob(
            key=config.key,
            state=config.state,
            inventory=read_inventory(config.inventory),
            inventory_path=str(config.inventory),
            policy=config.policy,
            expected=dict(DEFAULT_VERSIONS),
        )
        result = trio.run(publish_main, job, None)
        outcomes.append(sorted((r.name, r.outcome.value) for r in result.results))
        counts.append(me.num_fds())
    print(json.dumps({"before": before, "after": counts, "outcomes": outcomes}))


if __name__ == "__main__":
    main()
