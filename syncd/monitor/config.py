"""The ``[monitor]`` table of syncd.toml (and ``[monitor.smtp]``). Pure: validated values,
no I/O."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from syncd.inventory.model import HostName, MailAddress, checked_addresses
from syncd.monitor.freshness import Thresholds

Hours = Annotated[float, Field(gt=0, le=24 * 365)]


class SmtpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: HostName = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 25
    sender: MailAddress = "mirror-monitor@localhost"
    starttls: bool = False
    username: str | None = None
    password_file: Path | None = None  # the password stays out of syncd.toml
    cafile: Path | None = None


class MonitorConfig(BaseModel):
    """How the monitor checks, judges, keeps history and tells people."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    concurrency: Annotated[int, Field(ge=1, le=2000)] = 50
    request_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    run_deadline_s: Annotated[float, Field(gt=0, le=86400)] = 300.0
    interval_s: Annotated[float, Field(ge=60, le=86400)] = 3600.0
    lagging_grace_h: Hours = 3.0
    old_after_h: Hours = 24.0
    removed_after_h: Hours = 48.0
    unreachable_after: Annotated[int, Field(ge=1, le=100)] = 3
    recover_after: Annotated[int, Field(ge=1, le=100)] = 2
    retention_days: Annotated[float, Field(gt=0, le=3650)] = 30.0
    mail_interval_h: Annotated[float, Field(ge=0, le=24 * 30)] = 6.0
    # the outage guard: when more than this share of the checked mirrors fail in one pass, the
    # monitor suspects itself (its network, its resolver, the sources) and changes no DNS
    outage_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    # mirrors with an https URL: warn their admins this many days before the certificate
    # expires (once each), and verify it against this CA file (None: the system's store, as
    # freshclam does)
    cert_warn_days: list[Annotated[int, Field(ge=1, le=365)]] = [14, 7, 1]
    https_cafile: Path | None = None
    # the longest maintenance window honoured (a mirror's notice, a window set in the
    # inventory): a longer one is ignored, and the mirror judged as any other
    maintenance_max_days: Annotated[float, Field(gt=0, le=366)] = 7.0
    # a release file (and a CVD's tail) proven once per mirror and family is asked again with a
    # conditional Range request (syncd.httpcheck.conditional); false: read whole every pass
    conditional: bool = True
    team: list[str] = []
    status_page: Path | None = None
    metrics: Path | None = None
    smtp: SmtpConfig | None = None

    @field_validator("cert_warn_days")
    @classmethod
    def _warn_days(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("a day is listed twice")
        return sorted(v, reverse=True)

    @field_validator("team")
    @classmethod
    def _team(cls, v: list[str]) -> list[str]:
        return checked_addresses(v)

    def thresholds(self) -> Thresholds:
        return Thresholds(
            lagging_grace_s=self.lagging_grace_h * 3600,
            old_after_s=self.old_after_h * 3600,
            removed_after_s=self.removed_after_h * 3600,
            unreachable_after=self.unreachable_after,
            recover_after=self.recover_after,
        )
