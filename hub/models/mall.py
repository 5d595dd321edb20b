"""The universal mall: rewards (hosted, or cached from partners), slots, redemptions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, TypeAlias

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import ExactDecimal, JSONText, utcnow
from hub.enums import RedemptionStatus, RewardKind
from hub.errors import Failure
from hub.folding import searchable
from hub.models.base import Base, BigId, stored
from hub.models.exchange import RouteLegColumns


class Reward(Base):
    """A merchant's reward; id is "<merchant>:<ref>". Partner rewards are a cache of
    what the partner's connector last listed (`source` PARTNER, `refreshed_at`).

    `settlement_price` is what the paying merchant owes per unit: the merchant's own
    word (capped at price x pointValue when a redemption uses it) unless
    `settlement_contracted`, an ADMIN's contracted price. `offer_refusal` says why the
    partner's last offer of it was refused (then it is inactive and cannot be redeemed)."""

    __tablename__ = "rewards"
    __table_args__ = (
        Index("ix_rewards_merchant", "merchant_id", "active"),
        Index("uq_rewards_merchant_ref", "merchant_id", "ref", unique=True),
    )

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    ref: Mapped[str] = mapped_column(String(120))
    kind: Mapped[RewardKind] = mapped_column(stored(RewardKind, 30))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    price: Mapped[int] = mapped_column()
    settlement_price: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 4))
    settlement_contracted: Mapped[bool] = mapped_column(Boolean, default=False)
    offer_refusal: Mapped[str | None] = mapped_column(Text)
    stock: Mapped[int | None] = mapped_column()
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[str] = mapped_column(String(20))  # HOSTED or PARTNER
    has_slots: Mapped[bool] = mapped_column(Boolean, default=False)
    refreshed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Before priority_until only members in these tiers (of the merchant's program) or
    # credit levels may redeem it (JSON lists).
    priority_until: Mapped[dt.datetime | None] = mapped_column()
    priority_tiers: Mapped[str | None] = mapped_column(Text)
    priority_credit_levels: Mapped[str | None] = mapped_column(Text)
    # Labels such as "green" (payable with GREEN programs), a JSON list; None: no tags.
    tags: Mapped[str | None] = mapped_column(Text)
    # A VOUCHER's terms (hub.vouchers): what its code is worth at the merchant's till.
    voucher_face_value: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 4))
    voucher_min_spend: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 4))
    voucher_valid_days: Mapped[int | None] = mapped_column(Integer)
    # The title and description folded for a search (hub.folding), kept by the mapper
    # events below; the listing matches on it and never reads it (not in ListedReward).
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="")


@event.listens_for(Reward, "before_insert")
@event.listens_for(Reward, "before_update")
def _fold_for_search(_mapper: Any, _connection: Any, reward: Reward) -> None:
    reward.search_text = searchable(reward.title, reward.description)


@dataclass(frozen=True, slots=True)
class ListedReward:
    """A reward as the catalog page reads it: the rewards table's columns from a Core row,
    without the ORM. A page reads up to a hundred on every storefront request, and making
    ORM instances of them was about a sixth of a warm page's cost (1.3 ms of twenty).
    Read-only; its fields are the table's columns (a test holds them to the table)."""

    id: str
    merchant_id: str
    ref: str
    kind: RewardKind
    title: str
    description: str | None
    price: int
    settlement_price: Decimal | None
    settlement_contracted: bool
    offer_refusal: str | None
    stock: int | None
    active: bool
    source: str
    has_slots: bool
    refreshed_at: dt.datetime
    created_at: dt.datetime
    priority_until: dt.datetime | None
    priority_tiers: str | None
    priority_credit_levels: str | None
    tags: str | None
    voucher_face_value: Decimal | None
    voucher_min_spend: Decimal | None
    voucher_valid_days: int | None

    @classmethod
    def of(cls, row: Sequence[Any]) -> ListedReward:
        """From a row of LISTED_COLUMNS (in this order)."""
        return cls(*row)

    @classmethod
    def of_instance(cls, reward: Reward) -> ListedReward:
        """From a loaded Reward: its columns' values as the session holds them."""
        return cls(*(getattr(reward, name) for name in _LISTED_NAMES))


# The rewards columns that only a listing's WHERE uses.
UNLISTED = frozenset({"search_text"})
# What a ListedReward is read from, in its fields' order.
LISTED_COLUMNS = tuple(Reward.__table__.c[f.name] for f in fields(ListedReward))
_LISTED_NAMES = tuple(f.name for f in fields(ListedReward))

# A reward to read: a row of the session's, or one the catalog page listed.
RewardLike: TypeAlias = Reward | ListedReward


class Slot(Base):
    """An entry window, night or flight of a reward; id is "<reward>@<ref>"."""

    __tablename__ = "slots"
    __table_args__ = (Index("ix_slots_reward_start", "reward_id", "starts_at"),)

    id: Mapped[str] = mapped_column(String(300), primary_key=True)
    reward_id: Mapped[str] = mapped_column(ForeignKey("rewards.id"))
    ref: Mapped[str] = mapped_column(String(120))
    starts_at: Mapped[dt.datetime] = mapped_column()
    ends_at: Mapped[dt.datetime] = mapped_column()
    remaining: Mapped[int | None] = mapped_column()
    refreshed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RedemptionLeg(RouteLegColumns, Base):
    """One hop of the conversion a redemption paid through, at the rate version used: it
    counts against that rate's daily limit as a conversion's leg does."""

    __tablename__ = "redemption_legs"
    __table_args__ = (
        Index("ix_redemption_legs_usage", "member_id", "from_code", "to_code", "business_date"),
        Index("ix_redemption_legs_redemption", "redemption_id", "seq", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    redemption_id: Mapped[str] = mapped_column(ForeignKey("redemptions.id"))


class Redemption(Base):
    """A member's redemption of a reward, paid in any program; a saga like a conversion."""

    __tablename__ = "redemptions"
    __table_args__ = (
        Index("ix_redemptions_member", "member_id", "created_at"),
        Index("ix_redemptions_unfinished", "status", "next_attempt_at"),
        Index("ix_redemptions_fulfillment", "fulfillment_ref"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    reward_id: Mapped[str] = mapped_column(ForeignKey("rewards.id"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))  # the reward's
    slot_id: Mapped[str | None] = mapped_column(String(300))
    quantity: Mapped[int] = mapped_column(Integer)
    paid_with: Mapped[str] = mapped_column(ForeignKey("programs.code"))
    points: Mapped[int] = mapped_column()  # in the paying program, for the whole line
    # The reward's price for the whole line in its merchant's points (promotions applied),
    # and what the payer owes for it: that worth, a lower price the merchant asked, or an
    # ADMIN's contracted one (settlement_basis says which). None before migration 0012.
    price_points: Mapped[int | None] = mapped_column()
    # Points the member's tier in the paying program took off what the line costs there.
    discount_points: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    settlement_price: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))
    settlement_basis: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[RedemptionStatus] = mapped_column(stored(RedemptionStatus, 20))
    step: Mapped[str] = mapped_column(String(30))
    hold_ref: Mapped[str | None] = mapped_column(String(120))
    fulfillment_ref: Mapped[str | None] = mapped_column(String(120))
    refunded_points: Mapped[int] = mapped_column(default=0)
    compensation_points: Mapped[int] = mapped_column(default=0)
    cancel_reason: Mapped[str | None] = mapped_column(String(30))
    cancel_step: Mapped[str | None] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(100))
    failure: Mapped[Failure | None] = mapped_column(JSONText)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column()


class Voucher(Base):
    """The code a confirmed VOUCHER redemption gives the member, used once at the reward
    merchant's till. The code is the bearer's: shown to the member and ADMIN only."""

    __tablename__ = "vouchers"
    __table_args__ = (Index("ix_vouchers_merchant", "merchant_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    redemption_id: Mapped[str] = mapped_column(ForeignKey("redemptions.id"), unique=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    face_value: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))
    min_spend: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))
    valid_until: Mapped[dt.datetime] = mapped_column()
    used_at: Mapped[dt.datetime | None] = mapped_column()
    order_ref: Mapped[str | None] = mapped_column(String(120))
    order_amount: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 4))
    used_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
