"""Tier and TierStatus: a program's ladder and where a member stands on it."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from hub import models
from hub.tiers.ladder import benefits_of
from hub.tiers.standing import Standing
from schema.attributes import from_attributes
from schema.formatting import money, plain


@strawberry.type(description="One rung of a program's ladder.")
class Tier:
    code: strawberry.ID
    name: str
    min_spend: Decimal = strawberry.field(
        description="Money spent at the program in the trailing 12 months."
    )
    min_orders: int = strawberry.field(description="Purchases in the trailing 12 months.")
    accrual_multiplier: Decimal = strawberry.field(
        description="Times the program's accrual rate; stacks with promotions up to x20."
    )
    redemption_discount_percent: Decimal = strawberry.field(
        description="Off mall prices paid in this program."
    )
    benefits: list[str] = strawberry.field(description="Shown to the member.")

    @classmethod
    def from_row(cls, row: models.Tier) -> Tier:
        return from_attributes(
            cls,
            row,
            code=strawberry.ID(row.code),
            min_spend=money(row.min_spend),
            accrual_multiplier=plain(row.accrual_multiplier),
            redemption_discount_percent=plain(row.redemption_discount_percent),
            benefits=benefits_of(row),
        )


@strawberry.type(
    description="A member's tier in a program: held until the nightly review lowers it, "
    "raised as soon as an accrual qualifies."
)
class TierStatus:
    tier: Tier | None = strawberry.field(description="null: below the first tier.")
    qualifying_spend: Decimal = strawberry.field(description="In the trailing 12 months.")
    qualifying_orders: int = strawberry.field(description="In the trailing 12 months.")
    next: Tier | None = strawberry.field(description="null at the top tier.")
    spend_to_next: Decimal | None = strawberry.field(description="null at the top tier.")
    orders_to_next: int | None = strawberry.field(
        description="Purchases still needed for the next tier; null at the top tier."
    )

    @classmethod
    def of(cls, standing: Standing) -> TierStatus:
        to_next = standing.spend_to_next
        return cls(
            tier=Tier.from_row(standing.tier) if standing.tier else None,
            qualifying_spend=money(standing.qualification.spend),
            qualifying_orders=standing.qualification.orders,
            next=Tier.from_row(standing.next) if standing.next else None,
            spend_to_next=money(to_next) if to_next is not None else None,
            orders_to_next=standing.orders_to_next,
        )
