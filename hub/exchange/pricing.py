"""Routes and prices: destination points rounded down, bonus included, never created."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.selectable import ScalarSelect

from hub.db import new_row
from hub.enums import ConversionStatus, RedemptionStatus
from hub.errors import (
    BelowMinimum,
    FieldPath,
    LimitExceeded,
    MovementLimit,
    NotAMultipleOfStep,
    RateNotConfigured,
)
from hub.exchange.rates import rate_in_effect
from hub.merchants import platform_code
from hub.models import Conversion, ConversionLeg, ExchangeRate, Redemption, RedemptionLeg
from hub.validate import MAX_POINTS_PER_MOVEMENT


@dataclass(frozen=True)
class RouteLeg:
    """One hop of a priced route through one rate (stored as a ConversionLeg or a
    RedemptionLeg)."""

    rate: ExchangeRate
    points_in: int
    points_out: int


StoredLeg = TypeVar("StoredLeg", ConversionLeg, RedemptionLeg)


def stored_legs(
    model: type[StoredLeg],
    legs: Sequence[RouteLeg],
    member_id: str,
    business_date: dt.date,
    **owner: str,
) -> list[StoredLeg]:
    """The rows that keep a route's hops, in order, for the conversion or redemption named
    by `owner` (`conversion_id=...`): what the daily limits count."""
    return [
        new_row(
            model,
            seq=index,
            member_id=member_id,
            from_code=leg.rate.from_code,
            to_code=leg.rate.to_code,
            rate_id=leg.rate.id,
            points_in=leg.points_in,
            points_out=leg.points_out,
            business_date=business_date,
            **owner,
        )
        for index, leg in enumerate(legs)
    ]


_MADE_LEGS = "conversion_legs"  # on a session's info: the legs this transaction stored


async def conversion_legs(
    session: AsyncSession, conversion_id: str, made: list[ConversionLeg] | None = None
) -> list[ConversionLeg]:
    """A conversion's legs in order: `made`, when given, are the ones just stored (kept for
    the rest of the transaction); else those this transaction stored, else read."""
    kept: dict[str, list[ConversionLeg]] = session.info.setdefault(_MADE_LEGS, {})
    if made is not None:
        kept[conversion_id] = made
    if conversion_id in kept:
        return kept[conversion_id]
    return list(
        await session.scalars(
            select(ConversionLeg)
            .where(ConversionLeg.conversion_id == conversion_id)
            .order_by(ConversionLeg.seq)
        )
    )


@dataclass(frozen=True)
class Priced:
    legs: list[RouteLeg]

    @property
    def points(self) -> int:
        return self.legs[0].points_in

    @property
    def receive(self) -> int:
        return self.legs[-1].points_out

    @property
    def route(self) -> list[str]:
        return [self.legs[0].rate.from_code, *(leg.rate.to_code for leg in self.legs)]


def multiplier(rate: ExchangeRate) -> Decimal:
    """Destination points per source point, bonus included."""
    return rate.rate * (Decimal(100) + rate.bonus_percent) / Decimal(100)


def leg_out(points_in: int, rate: ExchangeRate) -> int:
    """floor(points x rate x (1 + bonus)): rounding never creates a point."""
    return int((Decimal(points_in) * multiplier(rate)).to_integral_value(rounding=ROUND_FLOOR))


async def find_route(
    session: AsyncSession, from_code: str, to_code: str, at: dt.datetime
) -> list[ExchangeRate]:
    """The direct rate, else the two legs through the platform program."""
    direct = await rate_in_effect(session, from_code, to_code, at)
    if direct is not None:
        return [direct]
    platform = await platform_code(session)
    if platform is not None and platform not in (from_code, to_code):
        first = await rate_in_effect(session, from_code, platform, at)
        second = await rate_in_effect(session, platform, to_code, at)
        if first is not None and second is not None:
            return [first, second]
    raise RateNotConfigured(
        f"No exchange rate from {from_code} to {to_code}, directly or through the platform "
        "program.",
        field=("to",),
    )


def price(rates: list[ExchangeRate], points: int) -> Priced:
    """Price `points` along the route, checking each leg's minimum and the first leg's step.

    A routed leg checks its minimum on the points arriving from the first leg;
    its step is not applied, since the member does not choose that amount.
    """
    legs: list[RouteLeg] = []
    amount = points
    for index, rate in enumerate(rates):
        if amount < rate.min_points:
            where = "" if index == 0 else f" (through {rate.from_code}: {amount} arrive)"
            raise BelowMinimum(
                f"The minimum for {rate.from_code} to {rate.to_code} is {rate.min_points:,} "
                f"points{where}.",
                field=("points",),
            )
        if index == 0 and amount % rate.step:
            raise NotAMultipleOfStep(
                f"points must be a multiple of {rate.step:,} for {rate.from_code} to "
                f"{rate.to_code}; {amount - amount % rate.step:,} or "
                f"{amount - amount % rate.step + rate.step:,} would do.",
                field=("points",),
            )
        out = leg_out(amount, rate)
        legs.append(RouteLeg(rate=rate, points_in=amount, points_out=out))
        amount = out
    if amount < 1:
        raise BelowMinimum(
            "That many points convert to nothing; convert more.",
            field=("points",),
        )
    if any(leg.points_out > MAX_POINTS_PER_MOVEMENT for leg in legs):
        raise MovementLimit(
            f"That many points would credit more than {MAX_POINTS_PER_MOVEMENT:,} in one "
            "conversion; convert less at a time.",
            field=("points",),
        )
    return Priced(legs=legs)


def points_needed(rates: list[ExchangeRate], receive: int) -> int | None:
    """The fewest source points whose conversion yields at least `receive` (rounded up for
    the payer), respecting minimums and the first leg's step; None if no amount can."""
    needed = receive
    for index, rate in reversed(list(enumerate(rates))):
        m = multiplier(rate)
        if m <= 0:
            return None
        guess = int((Decimal(needed) / m).to_integral_value(rounding=ROUND_CEILING))
        guess = max(guess, rate.min_points)
        step = rate.step if index == 0 else 1
        guess = -(-guess // step) * step
        while leg_out(guess, rate) < needed:  # at most a step or two: ceil covers the rest
            guess += step
        needed = guess
    return needed


def price_to_receive(rates: list[ExchangeRate], receive: int) -> Priced | None:
    """The legs of the fewest source points that yield `receive` or more: a redemption's
    whole line priced as a conversion of its price would be; None if no amount can."""
    points = points_needed(rates, receive)
    return None if points is None else price(rates, points)


async def daily_usage(
    session: AsyncSession, member_id: str, rate: ExchangeRate, business_date: dt.date
) -> int:
    """Source points of this pair the member converted on this business date, by a
    conversion or by paying in the mall through the rate; what was reversed, failed or
    cancelled gave its points back and no longer counts."""

    def taken(
        legs: type[ConversionLeg | RedemptionLeg],
        of: InstrumentedAttribute[str],
        by: type[Conversion | Redemption],
        live: tuple[str, ...],
    ) -> ScalarSelect[int]:
        """Source points the member's live `by`s took through this rate that day."""
        return (
            select(func.coalesce(func.sum(legs.points_in), 0))
            .join(by, by.id == of)
            .where(
                legs.member_id == member_id,
                legs.from_code == rate.from_code,
                legs.to_code == rate.to_code,
                legs.business_date == business_date,
                by.status.in_(live),
            )
            .scalar_subquery()
        )

    converted = taken(
        ConversionLeg,
        ConversionLeg.conversion_id,
        Conversion,
        (ConversionStatus.PENDING, ConversionStatus.COMPLETED),
    )
    paid = taken(
        RedemptionLeg,
        RedemptionLeg.redemption_id,
        Redemption,
        (RedemptionStatus.PENDING, RedemptionStatus.CONFIRMED),
    )
    used = await session.scalar(select(converted + paid))
    return int(used or 0)


async def check_limits(
    session: AsyncSession,
    member_id: str,
    priced: Priced,
    business_date: dt.date,
    field: FieldPath | None = None,
) -> None:
    """LIMIT_EXCEEDED when a leg would take the member past its rate's daily limit."""
    for leg in priced.legs:
        limit = leg.rate.daily_limit_per_member
        if limit is None:
            continue
        used = await daily_usage(session, member_id, leg.rate, business_date)
        if used + leg.points_in > limit:
            raise LimitExceeded(
                f"The daily limit for {leg.rate.from_code} to {leg.rate.to_code} is "
                f"{limit:,} points per member; {max(limit - used, 0):,} are left today.",
                field=field or ("points",),
            )
