"""Each step of a settlement run (settlement/netting.py) on a world small enough to work
out by hand: a platform (plat), merchants alpha and beta, 100 bps of fee.

alpha owes beta 10.005 and 20.000 (one pair, 30.005, rounded once: 30.01), beta owes alpha
5.00, alpha owes plat 1.00. Fees are charged to who received: beta 0.30 (30.005 x 1%),
alpha 0.05; none to the platform.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from hub.config import Settings
from hub.db import Database, utcnow
from hub.enums import BatchStatus, ConnectorKind, MerchantCategory, ObligationKind
from hub.merchants import NewMerchant, register_merchant
from hub.models import (
    NetPosition,
    Obligation,
    PaymentInstruction,
    Statement,
    StatementCounterparty,
)
from hub.obligation_rules import pair_totals
from settlement import netting

DAY = dt.date(2026, 11, 20)


async def _world(session: AsyncSession) -> None:
    await _merchant(session, "plat", MerchantCategory.PLATFORM)
    await _merchant(session, "alpha", MerchantCategory.OTHER)
    await _merchant(session, "beta", MerchantCategory.OTHER)
    rows = [
        ("alpha", "beta", "10.005"),
        ("alpha", "beta", "20.000"),
        ("beta", "alpha", "5.00"),
        ("alpha", "plat", "1.00"),
    ]
    await session.execute(
        insert(Obligation),
        [
            {
                "kind": ObligationKind.CONVERSION.value,
                "debtor_id": debtor,
                "creditor_id": creditor,
                "program_code": creditor.upper(),
                "points": 1,
                "amount": Decimal(amount),
                "reference": f"r{i}",
                "occurred_at": utcnow(),
                "business_date": DAY,
            }
            for i, (debtor, creditor, amount) in enumerate(rows)
        ],
    )


async def _merchant(session: AsyncSession, mid: str, category: MerchantCategory) -> None:
    await register_merchant(
        session,
        NewMerchant(
            id=mid,
            name=mid,
            category=category,
            program_code=mid.upper(),
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


async def test_each_step_of_a_run(db_url: str) -> None:
    settings = Settings(database_url=db_url, platform_fee_bps=100)
    db = Database(db_url)
    try:
        await db.transaction(_world)

        async def run(session: AsyncSession) -> dict[str, Any]:
            dialect = session.get_bind().dialect.name
            seen: dict[str, Any] = {}
            batch, high = await netting._open_batch(session, settings, dialect, DAY, "test")
            seen["opened"] = (batch.status, batch.claim_low is not None, high)

            totals = await netting._claim(session, dialect, batch, high)
            seen["totals"] = sorted(
                (r.debtor_id, r.creditor_id, r.amount, r.n)
                for r in await session.execute(select(totals))
            )

            await netting._charge_fees(session, dialect, batch, totals, "plat", 100)
            seen["fees"] = sorted(
                (o.debtor_id, o.creditor_id, o.amount)
                for o in await session.scalars(
                    select(Obligation).where(
                        Obligation.batch_id == batch.id,
                        Obligation.kind == ObligationKind.FEE.value,
                    )
                )
            )

            pairs = pair_totals(dialect, true(), rows=totals)
            await netting._net_positions(session, batch, pairs)
            seen["positions"] = {
                p.merchant_id: (p.receivable, p.payable, p.fees, p.net)
                for p in await session.scalars(
                    select(NetPosition).where(NetPosition.batch_id == batch.id)
                )
            }

            await netting._statements(session, batch, pairs)
            seen["statements"] = {
                s.merchant_id: (s.status, s.net)
                for s in await session.scalars(
                    select(Statement).where(Statement.batch_id == batch.id)
                )
            }
            seen["counterparties"] = sorted(
                (c.statement_id.split(":")[1], c.counterparty_id, c.receivable, c.payable)
                for c in await session.scalars(
                    select(StatementCounterparty).where(
                        StatementCounterparty.statement_id.like(batch.id + ":%")
                    )
                )
            )

            await netting._payments(session, batch.id, "plat")
            seen["payments"] = sorted(
                (i.from_merchant, i.to_merchant, i.amount)
                for i in await session.scalars(
                    select(PaymentInstruction).where(PaymentInstruction.batch_id == batch.id)
                )
            )

            await netting._close(session, batch, totals)  # checks every invariant too
            seen["closed"] = (batch.status, batch.obligation_count, batch.gross_amount)
            return seen

        seen = await db.transaction(run)
    finally:
        await db.dispose()

    status, has_range, high = seen["opened"]
    assert (status, has_range) == (BatchStatus.OPEN.value, True) and high > 0
    assert seen["totals"] == [
        ("alpha", "beta", Decimal("30.005"), 2),
        ("alpha", "plat", Decimal("1.00"), 1),
        ("beta", "alpha", Decimal("5.00"), 1),
    ]
    assert seen["fees"] == [("alpha", "plat", Decimal("0.05")), ("beta", "plat", Decimal("0.30"))]
    assert seen["positions"] == {
        "alpha": (Decimal("5.00"), Decimal("31.01"), Decimal("0.05"), Decimal("-26.06")),
        "beta": (Decimal("30.01"), Decimal("5.00"), Decimal("0.30"), Decimal("24.71")),
        "plat": (Decimal("1.35"), Decimal(0), Decimal(0), Decimal("1.35")),
    }
    assert seen["statements"] == {
        "alpha": ("DRAFT", Decimal("-26.06")),
        "beta": ("DRAFT", Decimal("24.71")),
        "plat": ("DRAFT", Decimal("1.35")),
    }
    assert seen["counterparties"] == [
        ("alpha", "beta", Decimal("5.00"), Decimal("30.01")),
        ("alpha", "plat", Decimal(0), Decimal("1.05")),
        ("beta", "alpha", Decimal("30.01"), Decimal("5.00")),
        ("beta", "plat", Decimal(0), Decimal("0.30")),
        ("plat", "alpha", Decimal("1.05"), Decimal(0)),
        ("plat", "beta", Decimal("0.30"), Decimal(0)),
    ]
    # Through the platform's clearing account: who owes pays it, it pays who is owed.
    assert seen["payments"] == [
        ("alpha", "plat", Decimal("26.06")),
        ("plat", "beta", Decimal("24.71")),
    ]
    assert seen["closed"] == (BatchStatus.CLOSED.value, 4, Decimal("36.005"))
