"""Properties of conversion: rounding never creates points, totals are conserved,
obligations are points x pointValue to the cent."""

from __future__ import annotations

import asyncio
import itertools
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from connectors.registry import Registry
from hub.auth import Principal
from hub.config import Settings
from hub.db import Database
from hub.enums import AccountKind, ConnectorKind, EntryKind, MerchantCategory, Role
from hub.exchange import pricing
from hub.exchange.conversion import ConvertRequest, start
from hub.exchange.rates import NewRate, set_rate
from hub.ledger import Movement, Points
from hub.members import Enrollment, account_of, enroll
from hub.merchants import NewMerchant, register_merchant
from hub.models import Account, Conversion, ExchangeRate, Obligation, Posting
from hub.verify import verify

ADMIN = Principal(key_id="test", role=Role.ADMIN)
rates = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("50"), places=3)
bonuses = st.decimals(min_value=Decimal(0), max_value=Decimal(100), places=2)
values = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("5"), places=4)


def exact(points: int, rate: Decimal, bonus: Decimal) -> int:
    """floor(points x rate x (1 + bonus/100)) in exact rational arithmetic."""
    value = Fraction(points) * Fraction(rate) * (1 + Fraction(bonus) / 100)
    return value.numerator // value.denominator


def _rate(rate: Decimal, bonus: Decimal, step: int = 1, minimum: int = 1) -> ExchangeRate:
    return ExchangeRate(
        rate=rate, bonus_percent=bonus, step=step, min_points=minimum, from_code="A", to_code="B"
    )


@given(rate=rates, bonus=bonuses, step=st.integers(1, 50), multiple=st.integers(1, 400))
def test_credited_is_the_floor_and_never_more(
    rate: Decimal, bonus: Decimal, step: int, multiple: int
) -> None:
    points = step * multiple
    r = _rate(rate, bonus, step, step)
    expected = exact(points, rate, bonus)
    if expected < 1:
        return
    priced = pricing.price([r], points)
    assert priced.receive == expected
    assert Fraction(priced.receive) <= Fraction(points) * Fraction(rate) * (
        1 + Fraction(bonus) / 100
    )


@given(rate=rates, bonus=bonuses, step=st.integers(1, 50), receive=st.integers(1, 100_000))
def test_points_needed_is_the_fewest_that_pay(
    rate: Decimal, bonus: Decimal, step: int, receive: int
) -> None:
    r = _rate(rate, bonus, step, step)
    needed = pricing.points_needed([r], receive)
    assert needed is not None
    assert needed % step == 0
    assert pricing.leg_out(needed, r) >= receive
    if needed - step >= step:
        assert pricing.leg_out(needed - step, r) < receive


_n = itertools.count()


async def _setup(
    db: Database,
    source_value: Decimal,
    target_value: Decimal,
    rate: Decimal,
    bonus: Decimal,
    step: int,
) -> tuple[str, str, str]:
    n = next(_n)
    codes = (f"S{n}", f"T{n}")

    async def work(session: Any) -> str:
        for code, value in zip(codes, (source_value, target_value), strict=True):
            await register_merchant(
                session,
                NewMerchant(
                    id=f"m-{code.lower()}",
                    name=code,
                    category=MerchantCategory.OTHER,
                    program_code=code,
                    program_name=code,
                    unit_name="point",
                    connector=ConnectorKind.HOSTED,
                    connector_config=None,
                    point_value=value,
                    accrual_rate=Decimal(1),
                    expiry_months=None,
                    compensation_percent=Decimal(10),
                ),
            )
        member = await enroll(session, ADMIN, Enrollment(codes[0], f"s{n}", "x"))
        await enroll(session, ADMIN, Enrollment(codes[1], f"t{n}", "x", member_id=member.id))
        account = await account_of(session, member.id, codes[0])
        assert account is not None
        await Points(session).credit(
            account,
            1_000_000,
            EntryKind.ACCRUAL,
            AccountKind.ISSUED,
            Movement(actor="t", business_date=account.created_at.date()),
            None,
        )
        await set_rate(
            session,
            ADMIN,
            NewRate(codes[0], codes[1], rate, step, step, bonus),
            held=Settings().rates_held_for,
        )
        return member.id

    member = await db.transaction(work)
    return member, codes[0], codes[1]


def test_conversion_conserves_every_program_and_prices_obligations(db_url: str) -> None:
    loop = asyncio.new_event_loop()
    db = Database(db_url)
    config = Settings(database_url=db_url)
    factory = Registry(config)

    @settings(
        max_examples=40 if "sqlite" in db_url else 15,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        rate=rates,
        bonus=bonuses,
        step=st.integers(1, 20),
        multiple=st.integers(1, 500),
        source_value=values,
        target_value=values,
    )
    def check(
        rate: Decimal,
        bonus: Decimal,
        step: int,
        multiple: int,
        source_value: Decimal,
        target_value: Decimal,
    ) -> None:
        points = step * multiple
        if exact(points, rate, bonus) < 1:
            return

        async def run() -> None:
            member, source, target = await _setup(db, source_value, target_value, rate, bonus, step)
            request = ConvertRequest(member, source, target, points, None, f"k{next(_n)}")
            started = await db.transaction(lambda s: start(s, ADMIN, config, factory, request))
            async with db.read() as session:
                conversion = await session.get(Conversion, started.conversion.id)
                assert conversion is not None and conversion.status == "COMPLETED"
                credited = exact(points, rate, bonus)
                assert conversion.points_credited == credited
                for code, expected in ((source, 1_000_000 - points), (target, credited)):
                    account = await account_of(session, member, code)
                    assert account is not None and account.balance == expected
                    total = await session.scalar(
                        select(func.sum(Posting.amount))
                        .join(Account)
                        .where(Account.program_code == code)
                    )
                    assert total == 0, f"{code} not conserved"
                obligation = await session.scalar(
                    select(Obligation).where(Obligation.reference == conversion.id)
                )
                assert obligation is not None
                # Obligations keep 4 places (issue 15): settlement rounds per counterparty.
                owed = (Decimal(credited) * target_value).quantize(
                    Decimal("0.0001"), rounding=ROUND_HALF_UP
                )
                assert obligation.amount == owed
                assert obligation.points == credited
                assert await verify(session) == []

        loop.run_until_complete(run())

    try:
        check()
    finally:
        loop.run_until_complete(db.dispose())
        loop.close()
