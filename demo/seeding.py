"""What every part of the demo's seeding does the same way: it acts as the demo's ADMIN,
accrues purchases as a till would send them, and sets promotions for a period."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub import accrual, green, promotions
from hub.auth import Principal
from hub.config import Settings
from hub.enums import Role

ADMIN = Principal(key_id="demo", role=Role.ADMIN)


async def purchase(
    session: AsyncSession,
    settings: Settings,
    member_id: str,
    program: str,
    order: str,
    amount: Decimal,
    occurred_at: dt.datetime | None = None,
    lines: Sequence[green.PurchaseLine] | None = None,
) -> None:
    """A purchase accrued with its order ref as the idempotency key, as a till retrying
    would send it: seeding a database twice accrues each order once."""
    await accrual.accrue(
        session,
        ADMIN,
        settings,
        accrual.Purchase(
            member_id=member_id,
            program=program,
            order_ref=order,
            amount=amount,
            occurred_at=occurred_at,
            idempotency_key=order,
            lines=lines,
        ),
    )


def offer(
    program: str,
    label: str,
    period: tuple[dt.datetime, dt.datetime],
    *,
    multiplier: Decimal | int = 1,
    discount_percent: int = 0,
    **targeting: Any,
) -> promotions.NewPromotion:
    """A promotion of `program` over `period` (starts, ends): points times `multiplier`,
    rewards `discount_percent` cheaper; `targeting`: its tiers, credit levels, minimum age,
    birthday month or tags."""
    return promotions.NewPromotion(
        program=program,
        accrual_multiplier=Decimal(multiplier),
        redemption_discount_percent=Decimal(discount_percent),
        starts_at=period[0],
        ends_at=period[1],
        label=label,
        **targeting,
    )


async def promote(session: AsyncSession, offers: Sequence[promotions.NewPromotion]) -> None:
    """Set each promotion, in order."""
    for promotion in offers:
        await promotions.set_promotion(session, ADMIN, promotion)
