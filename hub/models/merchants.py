"""Merchants, their programs, API keys and hub-wide settings."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import ExactDecimal, utcnow
from hub.enums import ConnectorKind, MerchantCategory, MerchantStatus, ProgramKind, Role
from hub.models.base import Base, stored


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[MerchantCategory] = mapped_column(stored(MerchantCategory, 20))
    status: Mapped[MerchantStatus] = mapped_column(
        stored(MerchantStatus, 20), default=MerchantStatus.ACTIVE
    )
    compensation_percent: Mapped[Decimal] = mapped_column(ExactDecimal(9, 4))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Program(Base):
    """A point currency. A merchant runs one STANDARD program (its primary one, registered
    with it) and at most one of each other kind: a GREEN one earned on green-tagged
    purchase lines and spent on green-tagged rewards only."""

    __tablename__ = "programs"
    __table_args__ = (Index("uq_programs_merchant_kind", "merchant_id", "kind", unique=True),)

    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    kind: Mapped[ProgramKind] = mapped_column(
        stored(ProgramKind, 20), default=ProgramKind.STANDARD, server_default="STANDARD"
    )
    name: Mapped[str] = mapped_column(String(200))
    unit_name: Mapped[str] = mapped_column(String(40))
    connector: Mapped[ConnectorKind] = mapped_column(stored(ConnectorKind, 20))
    # JSON: base URL, secretRef (the name of the environment variable that holds
    # the secret, never the secret itself), timeouts.
    connector_config: Mapped[str | None] = mapped_column(Text)
    point_value: Mapped[Decimal] = mapped_column(ExactDecimal(18, 6))
    accrual_rate: Mapped[Decimal] = mapped_column(ExactDecimal(18, 6))
    expiry_months: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    role: Mapped[Role] = mapped_column(stored(Role, 20))
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchants.id"))
    label: Mapped[str] = mapped_column(String(200))
    # SHA-256 of the secret: secrets are 32 random bytes, so a fast hash is enough.
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(100))
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    # Written at most once a minute per key and process (auth.KeyUsage), never per request.
    last_used_at: Mapped[dt.datetime | None] = mapped_column()


class HubSetting(Base):
    """Values every replica must agree on (the session signing key when not configured)."""

    __tablename__ = "hub_settings"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
