"""Settlement invariants for random obligations among N merchants."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select

from hub.config import Settings
from hub.db import Database, utcnow
from hub.enums import ConnectorKind, MerchantCategory
from hub.merchants import NewMerchant, register_merchant
from hub.models import Obligation, PaymentInstruction, SettlementBatch, Statement
from hub.obligation_rules import unsettled
from settlement.netting import settle
from settlement.statements import lines, positions
from tests.helpers import empty_database

_n = itertools.count()
DAY = dt.date(2026, 11, 1)

obligation = st.tuples(
    st.integers(0, 5),
    st.integers(0, 5),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2),
    st.integers(0, 3),  # days before the settled date
)


async def _merchants(session: Any, prefix: str, count: int, platform: bool) -> list[str]:
    ids = []
    for i in range(count):
        mid = f"{prefix}-{i}"
        await register_merchant(
            session,
            NewMerchant(
                id=mid,
                name=mid,
                category=MerchantCategory.PLATFORM
                if platform and i == 0
                else MerchantCategory.OTHER,
                program_code=f"{prefix.upper().replace('-', '_')}_{i}",
                program_name=mid,
                unit_name="point",
                connector=ConnectorKind.HOSTED,
                connector_config=None,
                point_value=Decimal("0.1"),
                accrual_rate=Decimal(1),
                expiry_months=None,
                compensation_percent=Decimal(10),
            ),
        )
        ids.append(mid)
    return ids


def test_random_obligations_settle_to_zero_in_at_most_n_minus_1_transfers(db_url: str) -> None:
    loop = asyncio.new_event_loop()
    db = Database(db_url)

    @settings(
        max_examples=25 if "sqlite" in db_url else 10,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        rows=st.lists(obligation, min_size=0, max_size=40),
        size=st.integers(2, 6),
        fee_bps=st.sampled_from([0, 25, 250]),
        platform=st.booleans(),
    )
    def check(
        rows: list[tuple[int, int, Decimal, int]], size: int, fee_bps: int, platform: bool
    ) -> None:
        prefix = f"n{next(_n)}"
        config = Settings(database_url=db_url, platform_fee_bps=fee_bps)
        # Each example gets its own date far apart, so batches never meet.
        day = DAY + dt.timedelta(days=10 * next(_n))

        async def run() -> None:
            await empty_database(db_url)

            async def setup(session: Any) -> list[str]:
                return await _merchants(session, prefix, size, platform)

            ids = await db.transaction(setup)
            data = [
                {
                    "kind": "CONVERSION",
                    "debtor_id": ids[a % size],
                    "creditor_id": ids[b % size],
                    "program_code": f"{prefix.upper()}_{b % size}",
                    "points": 1,
                    "amount": amount,
                    "reference": f"r{i}",
                    "occurred_at": utcnow(),
                    "business_date": day - dt.timedelta(days=back),
                }
                for i, (a, b, amount, back) in enumerate(rows)
                if a % size != b % size
            ]

            async def work(session: Any) -> str:
                if data:
                    await session.execute(insert(Obligation), data)
                result = await settle(session, config, day, "test")
                return result.batch.id

            batch_id = await db.transaction(work)
            async with db.read() as session:
                batch = await session.get(SettlementBatch, batch_id)
                assert batch is not None
                assert batch.obligation_count == len(data)
                assert batch.gross_amount == sum((d["amount"] for d in data), Decimal(0))
                found = await positions(session, batch_id)
                assert sum((p.net for p in found), Decimal(0)) == 0
                for p in found:
                    assert p.net == p.receivable - p.payable - p.fees
                for statement in await session.scalars(
                    select(Statement).where(Statement.batch_id == batch_id)
                ):
                    page, more = await lines(session, statement, 1000, None)
                    assert not more
                    assert sum((x.amount for x in page), Decimal(0)) == statement.net
                    assert (
                        sum((x.amount for x in page if x.amount > 0), Decimal(0))
                        == statement.receivable
                    )
                transfers = await session.scalar(
                    select(func.count())
                    .select_from(PaymentInstruction)
                    .where(PaymentInstruction.batch_id == batch_id)
                )
                assert transfers <= size - 1  # N merchants, the platform among them
                unclaimed = await session.scalar(
                    select(func.count())
                    .select_from(Obligation)
                    .where(
                        unsettled(session.get_bind().dialect.name),
                        Obligation.business_date <= day,
                    )
                )
                assert unclaimed == 0  # every obligation is in exactly one batch

        loop.run_until_complete(run())

    try:
        check()
    finally:
        loop.run_until_complete(db.dispose())
        loop.close()
