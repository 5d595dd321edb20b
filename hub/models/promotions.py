"""Promotions: accrual multipliers and redemption discounts of a program, for a period and
the members they are for."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import ExactDecimal, utcnow
from hub.models.base import Base, BigId


class Promotion(Base):
    __tablename__ = "promotions"
    __table_args__ = (Index("ix_promotions_program", "program_code", "starts_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program_code: Mapped[str] = mapped_column(ForeignKey("programs.code"))
    label: Mapped[str] = mapped_column(String(200))
    accrual_multiplier: Mapped[Decimal] = mapped_column(ExactDecimal(9, 4))
    redemption_discount_percent: Mapped[Decimal] = mapped_column(ExactDecimal(9, 4))
    starts_at: Mapped[dt.datetime] = mapped_column()
    ends_at: Mapped[dt.datetime] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Who qualifies (hub.eligibility); none given: every member. Lists are JSON.
    tiers: Mapped[str | None] = mapped_column(Text)
    credit_levels: Mapped[str | None] = mapped_column(Text)
    min_age: Mapped[int | None] = mapped_column(Integer)
    birthday_month: Mapped[bool] = mapped_column(Boolean, default=False)
    # Accrual on purchase lines with one of these tags only (a JSON list); None: all.
    tags: Mapped[str | None] = mapped_column(Text)
