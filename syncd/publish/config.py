"""The ``[policy]`` table of syncd.toml (how hard to push) and its ``[[sources]]`` (the sources,
their keys and shares). Pure: validated values, no I/O."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from pushwire.keyfile import check_source
from syncd.publish.sources import SourceSpec

Seconds = Annotated[float, Field(gt=0, le=86400)]


class Policy(BaseModel):
    """How hard to push. The defaults come from the sweeps in benchmarks/README.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    handshake_concurrency: Annotated[int, Field(ge=1, le=2000)] = 500
    session_concurrency: Annotated[int, Field(ge=1, le=20000)] = 1000
    connect_timeout: Seconds = 15.0
    login_timeout: Seconds = 30.0
    command_timeout: Seconds = 900.0
    run_timeout: Seconds = 1800.0
    keepalive_interval: Seconds = 15.0
    keepalive_count_max: Annotated[int, Field(ge=1, le=100)] = 4
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    backoff_initial: Seconds = 1.0
    backoff_max: Seconds = 60.0
    poll_initial: Seconds = 1.0
    poll_max: Seconds = 60.0
    output_limit: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    http_timeout: Seconds = 20.0  # each HTTP read, connect or write
    # the whole HTTP proof of one mirror (every request, every address family): a mirror that
    # trickles its answer fails its proof then, and never holds the summary or DNS longer
    proof_timeout: Seconds = 60.0
    http_check: bool = True
    # the daily cdiffs a release carries (Cisco's cvdupdate keeps 30): fewer in the source tree
    # is warned about, since users further behind then download the whole daily.cvd
    cdiff_history: Annotated[int, Field(ge=0, le=1000)] = 30
    # where asyncssh's asyncio code runs: a worker thread (measured 1.16x plain asyncio's CPU)
    # or trio-asyncio (2.0x); see benchmarks/README.md
    ssh_loop: Literal["thread", "trio-asyncio"] = "thread"
    # with [[sources]]: measured transfers per source in the record before their rates, not
    # the configured weights, split the mirrors (0: weights only)
    source_learn_after: Annotated[int, Field(ge=0, le=100_000)] = 20
    # with hubs (a `hub` table in the inventory): how long a second-wave mirror waits for its
    # hub's push to end before it is pushed from its source instead
    hub_wait: Seconds = 120.0

    @model_validator(mode="after")
    def _order(self) -> Policy:
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must not be smaller than backoff_initial")
        if self.poll_max < self.poll_initial:
            raise ValueError("poll_max must not be smaller than poll_initial")
        return self


class SourceConfig(BaseModel):
    """One ``[[sources]]`` entry: a source, the pusher key whose forced command syncs from it,
    its share of the mirrors and how many transfers it serves at once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, AfterValidator(check_source)]
    key: Path
    weight: Annotated[int, Field(ge=1, le=1000)] = 1
    max_transfers: Annotated[int, Field(ge=1, le=20000)] = 50

    def spec(self) -> SourceSpec:
        return SourceSpec(self.name, self.weight, self.max_transfers)
