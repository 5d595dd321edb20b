"""Versions of what each hub process keeps in memory (API keys, programs, rates)."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base


class CacheVersion(Base):
    """One counter per kind of cached data, raised in the transaction that changes it.

    Every process reads these few rows at most once per HUB_CACHE_CHECK_SECONDS (on the
    first request after the interval) and drops what changed: a revoked key is refused by
    every worker and replica within that interval, without a read per request.
    """

    __tablename__ = "cache_versions"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(default=0)
