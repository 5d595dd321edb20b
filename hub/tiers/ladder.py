"""setTiers: a program's ladder of tiers, lowest first, replaced as a whole."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub import validate
from hub.auth import Principal
from hub.db import rows_by
from hub.errors import InvalidInput, InvalidState
from hub.merchants import get_program, is_connected
from hub.models import Program, Tier
from hub.permissions import require_merchant
from hub.promotions import MAX_ACCRUAL_MULTIPLIER

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
MAX_TIERS = 10
MAX_BENEFITS = 10
MAX_SPEND = Decimal(10**12)
MAX_ORDERS = 1_000_000


@dataclass(frozen=True)
class TierSpec:
    code: str
    name: str
    min_spend: Decimal
    min_orders: int = 0
    accrual_multiplier: Decimal = Decimal(1)
    redemption_discount_percent: Decimal = Decimal(0)
    benefits: list[str] = field(default_factory=list)


def benefits_of(tier: Tier) -> list[str]:
    return tier.benefits


async def set_tiers(
    session: AsyncSession, principal: Principal, program_code: str, specs: Sequence[TierSpec]
) -> Program:
    """Replace the ladder of the caller's own program (ADMIN: any); an empty list removes it.

    Tiers come lowest first, each asking more spend than the one below and no fewer
    orders, and giving no less: a member who qualifies for a tier qualifies for every
    tier below it. Anything else is refused whole, with nothing changed."""
    program = await get_program(session, program_code, ("program",))
    require_merchant(principal, program.merchant_id, ("program",))
    if is_connected(program):
        raise InvalidState(
            f"{program.code} records purchases in the partner's own system; tiers qualify on "
            "accruals through the hub, so only hosted programs have them.",
            field=("program",),
        )
    if len(specs) > MAX_TIERS:
        raise InvalidInput(f"A program has at most {MAX_TIERS} tiers.", field=("tiers",))
    rows = [_checked(spec, index) for index, spec in enumerate(specs)]
    _check_order(rows)
    await session.execute(delete(Tier).where(Tier.program_code == program.code))
    for row in rows:
        row.program_code = program.code
        session.add(row)
    await session.flush()
    from hub.caches import LOYALTY, bump  # every process reads the ladders again

    await bump(session, LOYALTY)
    return program


def _checked(spec: TierSpec, index: int) -> Tier:
    f = ("tiers", str(index))
    if not CODE.fullmatch(spec.code):
        raise InvalidInput(
            "A tier's code is 1-40 letters, digits, '.', '_' or '-'.", field=(*f, "code")
        )
    name = validate.text(spec.name, (*f, "name"), max_length=100)
    validate.money(spec.min_spend, (*f, "min_spend"), high=MAX_SPEND)
    validate.points_in_range(spec.min_orders, (*f, "min_orders"), low=0, high=MAX_ORDERS)
    validate.decimal_in_range(
        spec.accrual_multiplier,
        (*f, "accrual_multiplier"),
        low=Decimal(1),
        high=MAX_ACCRUAL_MULTIPLIER,
        places=4,
    )
    validate.percent(
        spec.redemption_discount_percent, (*f, "redemption_discount_percent"), high=Decimal(99)
    )
    if len(spec.benefits) > MAX_BENEFITS:
        raise InvalidInput(f"A tier lists at most {MAX_BENEFITS} benefits.", field=(*f, "benefits"))
    benefits = [
        validate.text(b, (*f, "benefits", str(i)), max_length=100)
        for i, b in enumerate(spec.benefits)
    ]
    return Tier(
        code=spec.code,
        rank=index,
        name=name,
        min_spend=spec.min_spend,
        min_orders=spec.min_orders,
        accrual_multiplier=spec.accrual_multiplier,
        redemption_discount_percent=spec.redemption_discount_percent,
        benefits=benefits,
    )


# What a tier asks or gives that is never less than the tier below's, and the sentence that
# refuses a ladder where it is (`high` the tier, `low` the one below).
_NO_LESS_THAN_BELOW = (
    (
        "min_orders",
        "Tiers go lowest first and do not overlap: {high.code} asks fewer orders "
        "({high.min_orders}) than {low.code} ({low.min_orders}).",
    ),
    (
        "accrual_multiplier",
        "{high.code} is above {low.code} but earns less (x{high.accrual_multiplier} "
        "against x{low.accrual_multiplier}).",
    ),
    (
        "redemption_discount_percent",
        "{high.code} is above {low.code} but its redemption discount is smaller.",
    ),
)


def _check_order(rows: list[Tier]) -> None:
    """Lowest first, nested: more spend, no fewer orders, no smaller benefit than below."""
    seen: set[str] = set()
    for index, (low, high) in enumerate(zip([None, *rows], rows, strict=False)):
        f = ("tiers", str(index))
        # Codes are read by people and tills: SILVER and silver would be one tier to them.
        if high.code.casefold() in seen:
            raise InvalidInput(
                f"Tier code {high.code!r} is given twice (codes differ by more than case).",
                field=(*f, "code"),
            )
        seen.add(high.code.casefold())
        if low is None:
            continue
        if high.min_spend <= low.min_spend:
            raise InvalidInput(
                f"Tiers go lowest first and do not overlap: {high.code} must ask more spend "
                f"than {low.code} ({high.min_spend} is not above {low.min_spend}).",
                field=(*f, "min_spend"),
            )
        for name, sentence in _NO_LESS_THAN_BELOW:
            if getattr(high, name) < getattr(low, name):
                raise InvalidInput(sentence.format(high=high, low=low), field=(*f, name))


async def ladder(session: AsyncSession, program_code: str) -> list[Tier]:
    """The program's tiers, lowest first (empty: it has none)."""
    return list(
        await session.scalars(
            select(Tier).where(Tier.program_code == program_code).order_by(Tier.rank)
        )
    )


async def ladders_by_program(
    session: AsyncSession, program_codes: Sequence[str]
) -> dict[str, list[Tier]]:
    """The ladders of several programs in one query (a DataLoader's fetch)."""
    return await rows_by(session, Tier, Tier.program_code, program_codes, Tier.rank)
