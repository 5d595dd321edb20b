"""quoteConversion: a price that holds for a short time, and conversion lookups."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub import permissions
from hub.auth import Principal
from hub.config import Settings
from hub.db import utcnow
from hub.exchange import pricing
from hub.exchange.conversion import check_request
from hub.ids import new_id
from hub.models import Conversion, Program, Quote


async def create_quote(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    member_id: str,
    from_code: str,
    to_code: str,
    points: int,
) -> Quote:
    """Price a conversion now and lock its rates for the quote's lifetime."""
    await check_request(session, principal, member_id, from_code, to_code, points)
    now = utcnow()
    rates = await pricing.find_route(session, from_code, to_code, now)
    priced = pricing.price(rates, points)
    await pricing.check_limits(session, member_id, priced, settings.business_date(now))
    quote = Quote(
        id=new_id("qt"),
        member_id=member_id,
        from_code=from_code,
        to_code=to_code,
        points=priced.points,
        receive=priced.receive,
        rate_ids=[leg.rate.id for leg in priced.legs],
        route=priced.route,
        expires_at=(now + dt.timedelta(seconds=settings.quote_ttl_seconds)).replace(microsecond=0),
        actor=principal.actor,
        created_at=now,
    )
    session.add(quote)
    await session.flush()
    return quote


async def _touches(session: AsyncSession, conversion: Conversion, merchant_id: str) -> bool:
    """Whether the conversion's route passes through one of the merchant's programs."""
    own = await session.scalars(select(Program.code).where(Program.merchant_id == merchant_id))
    return not set(own).isdisjoint(conversion.route)


async def visible_conversion(
    session: AsyncSession, principal: Principal, conversion_id: str
) -> Conversion | None:
    """ADMIN and FINANCE see any; the member its own; a merchant those touching its program."""
    return await permissions.visible_activity(
        session, principal, Conversion, conversion_id, _touches
    )
