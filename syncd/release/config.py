"""The ``[announce]`` and ``[releases]`` tables of syncd.toml. Pure: validated values, no I/O.

``[announce]``: the list every release is mailed to once the gate opens (over the mail server
of ``[monitor.smtp]``). ``[releases]``: how long a release may take to reach 90 % of the active
mirrors before the alert rule fires (exported with the metrics)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from syncd.inventory.model import MailAddress


class AnnounceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    to: MailAddress  # the list, such as clamav-virusdb@lists.example.org
    sender: MailAddress  # the From: of the announcement
    signature: Annotated[str, Field(max_length=200)] = "ClamAV database publishing"


class ReleasesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # a release not served by 90 % of the active mirrors this long after its publish began
    # is late: pushsync_release_slow_after_seconds, which the alert rule compares with
    t90_limit_h: Annotated[float, Field(gt=0, le=24 * 7)] = 2.0
