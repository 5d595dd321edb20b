"""Tiers: each program's ladder, members' standing on it, and the spend it qualifies on."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import ExactDecimal, JSONText, utcnow
from hub.models.base import Base, BigId


class Tier(Base):
    """One rung of a program's ladder; `rank` 0 is the lowest. setTiers replaces them all."""

    __tablename__ = "tiers"
    __table_args__ = (Index("uq_tiers_program_code", "program_code", "code", unique=True),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program_code: Mapped[str] = mapped_column(ForeignKey("programs.code"))
    code: Mapped[str] = mapped_column(String(40))
    rank: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    min_spend: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))
    min_orders: Mapped[int] = mapped_column(Integer)
    accrual_multiplier: Mapped[Decimal] = mapped_column(ExactDecimal(9, 4))
    redemption_discount_percent: Mapped[Decimal] = mapped_column(ExactDecimal(9, 4))
    benefits: Mapped[list[str]] = mapped_column(JSONText)


class MemberTier(Base):
    """The tier a member holds in a program: raised by an accrual that qualifies, lowered
    only by the nightly review. `tier_code` NULL: below the first tier."""

    __tablename__ = "member_tiers"

    program_code: Mapped[str] = mapped_column(ForeignKey("programs.code"), primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), primary_key=True)
    tier_code: Mapped[str | None] = mapped_column(String(40))
    since: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AccrualAmount(Base):
    """The money an accrual's purchase was for: what tiers qualify on (spend and orders in
    the trailing 12 months)."""

    __tablename__ = "accrual_amounts"
    __table_args__ = (
        Index("ix_accrual_amounts_program_member", "program_code", "member_id", "occurred_at"),
    )

    entry_id: Mapped[int] = mapped_column(
        ForeignKey("entries.id"), primary_key=True, autoincrement=False
    )
    program_code: Mapped[str] = mapped_column(ForeignKey("programs.code"))
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    amount: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))
    occurred_at: Mapped[dt.datetime] = mapped_column()


class TierReview(Base):
    """The last business date a program's members were reviewed (once a day, one replica)."""

    __tablename__ = "tier_reviews"

    program_code: Mapped[str] = mapped_column(ForeignKey("programs.code"), primary_key=True)
    reviewed_on: Mapped[dt.date] = mapped_column(Date)
    reviewed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
