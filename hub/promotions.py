"""Promotions: accrual multipliers and redemption discounts, each with a period and,
optionally, who qualifies (tiers, credit levels, a minimum age, the birthday month); an
accrual multiplier may apply only to purchase lines with some tags ("double points on
lines tagged green")."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub import tags as tags_
from hub import validate
from hub.auth import Principal
from hub.enums import CreditLevel
from hub.errors import InvalidInput
from hub.merchants import get_program
from hub.models import Promotion, Tier
from hub.permissions import require_merchant

# Active multipliers stack by multiplying, up to this: three x100 promotions once
# committed 2e14 points. setPromotion refuses what would pass it; accrual caps at it.
MAX_ACCRUAL_MULTIPLIER = Decimal(20)
MAX_AGE = 150


@dataclass(frozen=True)
class NewPromotion:
    program: str
    accrual_multiplier: Decimal
    redemption_discount_percent: Decimal
    starts_at: dt.datetime
    ends_at: dt.datetime
    label: str
    tiers: list[str] = field(default_factory=list)
    credit_levels: list[CreditLevel] = field(default_factory=list)
    min_age: int | None = None
    birthday_month: bool = False
    tags: list[str] = field(default_factory=list)

    @property
    def is_targeted(self) -> bool:
        return bool(self.tiers or self.credit_levels or self.min_age is not None) or (
            self.birthday_month
        )


def targeted(promotion: Promotion) -> bool:
    """Whether a stored promotion is for some members only (hub.eligibility says which)."""
    return bool(
        promotion.tiers
        or promotion.credit_levels
        or promotion.min_age is not None
        or promotion.birthday_month
    )


@dataclass(frozen=True)
class Line:
    """A purchase line as accrual sees it: its money and its tags."""

    amount: Decimal
    tags: tuple[str, ...] = ()


async def set_promotion(
    session: AsyncSession, principal: Principal, data: NewPromotion
) -> Promotion:
    """Add a promotion to the caller's own program (ADMIN: any program)."""
    program = await get_program(session, data.program, ("program",))
    require_merchant(principal, program.merchant_id, ("program",))
    validate.decimal_in_range(
        data.accrual_multiplier,
        ("accrual_multiplier",),
        low=Decimal(0),
        high=MAX_ACCRUAL_MULTIPLIER,
        places=4,
        low_inclusive=False,
    )
    validate.percent(
        data.redemption_discount_percent, ("redemption_discount_percent",), high=Decimal(99)
    )
    starts, ends = validate.period(data.starts_at, data.ends_at, (("starts_at",), ("ends_at",)))
    if data.accrual_multiplier == 1 and data.redemption_discount_percent == 0:
        raise InvalidInput(
            "The promotion changes nothing: give an accrualMultiplier other than 1 or a "
            "redemptionDiscountPercent above 0.",
            field=("accrual_multiplier",),
        )
    tiers = await _checked_tiers(session, program.code, data.tiers)
    if data.min_age is not None:
        validate.points_in_range(data.min_age, ("min_age",), low=1, high=MAX_AGE)
    line_tags = tags_.checked(data.tags, ("tags",))
    if line_tags and data.redemption_discount_percent != 0:
        raise InvalidInput(
            "A promotion for tagged purchase lines changes accrual only; give "
            "redemptionDiscountPercent in a promotion of its own.",
            field=("tags",),
        )
    if not data.is_targeted:
        await _check_stacking(session, program.code, data.accrual_multiplier, starts, ends)
    promotion = Promotion(
        program_code=program.code,
        label=validate.text(data.label, ("label",), max_length=200),
        accrual_multiplier=data.accrual_multiplier,
        redemption_discount_percent=data.redemption_discount_percent,
        starts_at=starts,
        ends_at=ends,
        created_by=principal.key_id,
        tiers=json.dumps(tiers) if tiers else None,
        credit_levels=(
            json.dumps(sorted({c.value for c in data.credit_levels}))
            if data.credit_levels
            else None
        ),
        min_age=data.min_age,
        birthday_month=data.birthday_month,
        tags=tags_.encode(line_tags),
    )
    session.add(promotion)
    await session.flush()
    from hub.caches import LOYALTY, bump  # every process reads the promotions again

    await bump(session, LOYALTY)
    return promotion


async def _checked_tiers(session: AsyncSession, program_code: str, given: list[str]) -> list[str]:
    """The tier codes named, each one of the program's own."""
    if not given:
        return []
    known = set(await session.scalars(select(Tier.code).where(Tier.program_code == program_code)))
    unknown = sorted(set(given) - known)
    if unknown:
        raise InvalidInput(
            f"{program_code} has no tier {', '.join(unknown)}"
            + (f" (its tiers: {', '.join(sorted(known))})." if known else "; set its tiers first."),
            field=("tiers",),
        )
    return sorted(set(given))


async def _check_stacking(
    session: AsyncSession,
    program_code: str,
    multiplier: Decimal,
    starts: dt.datetime,
    ends: dt.datetime,
) -> None:
    """Refuse a multiplier for everyone that, stacked on the promotions for everyone
    overlapping its period, would pass MAX_ACCRUAL_MULTIPLIER at any moment (the product
    only changes when one starts). Promotions for tagged lines count too: one line may
    carry every tag. Targeted promotions (a tier, a credit level, an age, a birthday) stack
    with these at accrual, where the product is held to the cap."""
    if multiplier <= 1:
        return
    overlapping = list(
        await session.scalars(
            select(Promotion).where(
                Promotion.program_code == program_code,
                Promotion.starts_at < ends,
                Promotion.ends_at > starts,
                or_(Promotion.accrual_multiplier > 1, Promotion.accrual_multiplier < 1),
            )
        )
    )
    overlapping = [p for p in overlapping if not targeted(p)]
    moments = {starts, *(p.starts_at for p in overlapping if starts <= p.starts_at < ends)}
    for moment in moments:
        stacked = multiplier * accrual_multiplier(
            [p for p in overlapping if p.starts_at <= moment < p.ends_at]
        )
        if stacked > MAX_ACCRUAL_MULTIPLIER:
            raise InvalidInput(
                "With the promotions already running then, accrual would be "
                f"x{stacked.normalize():f}; stacked multipliers may reach "
                f"x{MAX_ACCRUAL_MULTIPLIER} at most.",
                field=("accrual_multiplier",),
            )


async def active(session: AsyncSession, program_code: str, at: dt.datetime) -> list[Promotion]:
    """The program's promotions running at `at`, oldest first (as memos name them)."""
    rows = await session.scalars(
        select(Promotion)
        .where(
            Promotion.program_code == program_code,
            Promotion.starts_at <= at,
            Promotion.ends_at > at,
        )
        .order_by(Promotion.id)
    )
    return list(rows)


def covers(promotion: Promotion, line_tags: Collection[str]) -> bool:
    """Whether a promotion applies to a purchase line: one for every line, or one whose
    tags the line carries (one shared tag is enough)."""
    wanted = tags_.decode(promotion.tags)
    return not wanted or not set(wanted).isdisjoint(line_tags)


def points_on(
    lines: Sequence[Line], rate: Decimal, promotions: list[Promotion], base: Decimal = Decimal(1)
) -> int:
    """floor(sum of line amount x multipliers of the promotions covering it (times `base`,
    the member's tier), x rate): each line earns its own promotions, and a partial point is
    never granted."""
    total = Decimal(0)
    for line in lines:
        covering = [p for p in promotions if covers(p, line.tags)]
        total += line.amount * accrual_multiplier(covering, base)
    return int((total * rate).to_integral_value(rounding=ROUND_FLOOR))


def accrual_multiplier(promotions: list[Promotion], base: Decimal = Decimal(1)) -> Decimal:
    """Active multipliers compound: double points during a double-points week is x2, and
    two overlapping x2 promotions are x4, times `base` (the member's tier); never more than
    MAX_ACCRUAL_MULTIPLIER (promotions stored before the cap existed are held to it too)."""
    return min(stacked(promotions, base), MAX_ACCRUAL_MULTIPLIER)


def stacked(promotions: list[Promotion], base: Decimal = Decimal(1)) -> Decimal:
    """The product of the multipliers before the cap holds it."""
    result = base
    for promotion in promotions:
        result *= promotion.accrual_multiplier
    return result


def discounted_price(price: int, promotions: list[Promotion]) -> int:
    """The price after the largest active discount (discounts do not stack), rounded up."""
    best = max((p.redemption_discount_percent for p in promotions), default=Decimal(0))
    return percent_off(price, best)


def percent_off(price: int, percent: Decimal) -> int:
    """`price` less `percent`, rounded up: a discount never makes a partial point free."""
    if percent == 0:
        return price
    value = Decimal(price) * (Decimal(100) - percent) / Decimal(100)
    return int(value.to_integral_value(rounding=ROUND_CEILING))
