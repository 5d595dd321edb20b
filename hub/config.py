"""Configuration from the environment (HUB_*), as the contract README names it."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from functools import cached_property
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting of the hub; read once per process from HUB_* variables."""

    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore", frozen=True)

    # Secrets are left out of repr(): a traceback or a debug print never shows them.
    database_url: str = Field(default="sqlite+aiosqlite:///./hub.db", repr=False)
    bootstrap_admin_key: str | None = Field(default=None, repr=False)
    env: Literal["development", "production"] = "development"
    settlement_tz: str = "Asia/Shanghai"
    settlement_at: str = "02:00"
    settlement_currency: str = "CNY"
    platform_fee_bps: int = Field(default=0, ge=0, le=10_000)
    cors_origins: str = ""

    # Signs member session tokens. Replicas must share it; when unset the hub
    # keeps a random one in the database so that every replica agrees.
    secret_key: str | None = Field(default=None, repr=False)
    member_session_ttl_seconds: int = Field(default=1800, gt=0)
    quote_ttl_seconds: int = Field(default=60, gt=0)
    hold_timeout_seconds: int = Field(default=900, gt=0)
    idempotency_retention_days: int = Field(default=7, ge=7)

    # Query limits (DESIGN.md, Security).
    max_query_depth: int = 12
    max_query_tokens: int = 2000
    max_query_aliases: int = 30
    max_query_cost: int = 5000
    max_page_size: int = 100

    # Operational.
    background_jobs: bool = True  # expiry, hold sweeper, sagas, nightly settlement
    # Each process's connections to the database: kept open, opened beyond them under load,
    # and how long a request waits for one before it fails.
    db_pool_size: int = Field(default=10, ge=1)
    db_pool_overflow: int = Field(default=20, ge=0)
    db_pool_timeout_seconds: float = Field(default=30.0, gt=0)
    # How often each process reads the cache counters (hub.caches): a revoked key, a new
    # program or rate is seen by every worker and replica within this many seconds.
    cache_check_seconds: float = Field(default=2.0, ge=0)
    expiry_interval_seconds: float = Field(default=600, gt=0)
    sweep_interval_seconds: float = Field(default=30, gt=0)
    log_level: str = "INFO"
    log_json: bool | None = None  # default: JSON in production, console otherwise
    # Requests per minute per API key; None: 1200 in production, off in development; 0: off.
    rate_limit_per_minute: int | None = Field(default=None, ge=0)
    # Failed authentications per minute per client address; None: 60 in production, off in
    # development; 0: off.
    auth_failures_per_minute: int | None = Field(default=None, ge=0)
    # Shared state of every worker and replica (rate limits); unset: each process its own.
    redis_url: str | None = Field(default=None, repr=False)
    redis_prefix: str = "hub:"
    partner_timeout_seconds: float = Field(default=5.0, gt=0)
    # Partner base URLs on loopback or private addresses (the demo's sandboxes); off in any
    # real deployment. Metadata and link-local addresses are refused either way.
    allow_private_partners: bool = False
    catalog_budget_seconds: float = Field(default=1.5, gt=0)
    catalog_cache_seconds: float = Field(default=60.0, gt=0)
    # Outbound webhooks to merchants: each attempt's timeout, and how long to keep trying.
    # How far back a purchase may be dated: further back it would land in business dates
    # long closed, its points expiring at once (outside review: 2001-01-01 was accepted).
    accrual_backdate_days: int = Field(default=90, ge=0, le=3660)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    webhook_retry_hours: float = Field(default=24.0, gt=0)
    webhook_interval_seconds: float = Field(default=1.0, gt=0)
    webhook_backoff_seconds: float = Field(default=10.0, gt=0)  # doubles per attempt, max 1 h
    # Bulk accrual imports: rows per chunk (one transaction each), how long a process holds a
    # job before another may take it over (renewed every chunk), how often unfinished jobs
    # are looked for.
    import_chunk_rows: int = Field(default=5000, ge=1, le=10_000)
    import_lease_seconds: float = Field(default=60.0, gt=0)
    import_interval_seconds: float = Field(default=5.0, gt=0)

    # Partner secrets by reference: HUB_PARTNER_SECRETS as JSON ({"SKYAIR": "..."}), or one
    # variable per partner, HUB_PARTNER_SECRET_<REF>. Never stored in the database.
    partner_secrets: dict[str, str] = Field(default_factory=dict, repr=False)

    def partner_secret(self, ref: str) -> str | None:
        """The shared secret of a partner, from configuration."""
        return self.partner_secrets.get(ref) or os.environ.get(f"HUB_PARTNER_SECRET_{ref}")

    @field_validator("settlement_tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)  # raises with the zone's name when it is unknown
        return value

    @field_validator("settlement_at")
    @classmethod
    def _clock_or_off(cls, value: str) -> str:
        if value.lower() == "off":
            return "off"
        dt.time.fromisoformat(value)
        return value

    @property
    def rate_limit(self) -> int:
        if self.rate_limit_per_minute is not None:
            return self.rate_limit_per_minute
        return 1200 if self.is_production else 0

    @property
    def auth_failure_limit(self) -> int:
        if self.auth_failures_per_minute is not None:
            return self.auth_failures_per_minute
        return 60 if self.is_production else 0

    @property
    def rates_held_for(self) -> dt.timedelta:
        """How long after a rate version stops a conversion may still be priced at it: a
        quote holds it for quote_ttl_seconds, and a process that has not yet seen the next
        version keeps it for up to cache_check_seconds before that."""
        return dt.timedelta(seconds=self.quote_ttl_seconds + self.cache_check_seconds)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settlement_tz)

    @property
    def settlement_time(self) -> dt.time | None:
        return None if self.settlement_at == "off" else dt.time.fromisoformat(self.settlement_at)

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def platform_fee_rate(self) -> Decimal:
        return Decimal(self.platform_fee_bps) / Decimal(10_000)

    def business_date(self, moment: dt.datetime) -> dt.date:
        """The local calendar date of a moment in the settlement time zone."""
        return moment.astimezone(self.tz).date()
