"""Exchange rates, quotes, conversions and their legs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import ExactDecimal, JSONText, utcnow
from hub.enums import ConversionStatus
from hub.errors import Failure
from hub.models.base import Base, BigId, stored


class ExchangeRate(Base):
    """One version of the rate of an ordered pair; a change adds a version."""

    __tablename__ = "exchange_rates"
    __table_args__ = (Index("ix_exchange_rates_pair", "from_code", "to_code", "effective_from"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    from_code: Mapped[str] = mapped_column(ForeignKey("programs.code"))
    to_code: Mapped[str] = mapped_column(ForeignKey("programs.code"))
    rate: Mapped[Decimal] = mapped_column(ExactDecimal(18, 6))
    min_points: Mapped[int] = mapped_column()
    step: Mapped[int] = mapped_column()
    bonus_percent: Mapped[Decimal] = mapped_column(ExactDecimal(9, 4))
    daily_limit_per_member: Mapped[int | None] = mapped_column()
    effective_from: Mapped[dt.datetime] = mapped_column()
    effective_to: Mapped[dt.datetime | None] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Quote(Base):
    """A conversion priced at the rates of its creation, honoured until it expires."""

    __tablename__ = "quotes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    from_code: Mapped[str] = mapped_column(ForeignKey("programs.code"))
    to_code: Mapped[str] = mapped_column(ForeignKey("programs.code"))
    points: Mapped[int] = mapped_column()
    receive: Mapped[int] = mapped_column()
    rate_ids: Mapped[list[str]] = mapped_column(JSONText)  # one per leg
    route: Mapped[list[str]] = mapped_column(JSONText)  # program codes, from first
    expires_at: Mapped[dt.datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Conversion(Base):
    """A member's move of points between programs; a saga when a partner is involved."""

    __tablename__ = "conversions"
    __table_args__ = (
        Index("ix_conversions_member", "member_id", "created_at"),
        Index("ix_conversions_unfinished", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    from_code: Mapped[str] = mapped_column(ForeignKey("programs.code"))
    to_code: Mapped[str] = mapped_column(ForeignKey("programs.code"))
    points_debited: Mapped[int] = mapped_column()
    points_credited: Mapped[int] = mapped_column()
    route: Mapped[list[str]] = mapped_column(JSONText)  # program codes, from first
    status: Mapped[ConversionStatus] = mapped_column(stored(ConversionStatus, 20))
    # Saga state: where the conversion stands (see hub.exchange.saga).
    step: Mapped[str] = mapped_column(String(30))
    quote_id: Mapped[str | None] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(100))
    business_date: Mapped[dt.date] = mapped_column(Date)
    failure: Mapped[Failure | None] = mapped_column(JSONText)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column()
    debit_ref: Mapped[str | None] = mapped_column(String(120))
    credit_ref: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RouteLegColumns:
    """One hop of a route at the rate version used: a conversion's, or the conversion a
    redemption paid through. Each counts against that rate's daily limit."""

    seq: Mapped[int] = mapped_column(Integer)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    from_code: Mapped[str] = mapped_column(ForeignKey("programs.code"))
    to_code: Mapped[str] = mapped_column(ForeignKey("programs.code"))
    rate_id: Mapped[str] = mapped_column(ForeignKey("exchange_rates.id"))
    points_in: Mapped[int] = mapped_column()
    points_out: Mapped[int] = mapped_column()
    business_date: Mapped[dt.date] = mapped_column(Date)


class ConversionLeg(RouteLegColumns, Base):
    """One hop of a conversion's route, at the rate version used."""

    __tablename__ = "conversion_legs"
    __table_args__ = (
        Index("ix_conversion_legs_usage", "member_id", "from_code", "to_code", "business_date"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    conversion_id: Mapped[str] = mapped_column(ForeignKey("conversions.id"))
