"""For random obligations of every kind, with 4 decimal places, the settlement run and
`hub verify` agree: a batch's fees and positions recomputed from its obligations equal the
stored ones, positions and payments are whole cents and net to zero (issue 15)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from hub.config import Settings
from hub.db import Database, utcnow
from hub.models import NetPosition, Obligation, PaymentInstruction
from hub.verify import verify
from settlement.netting import settle
from tests.helpers import empty_database
from tests.settlement.test_netting_properties import _merchants

_n = itertools.count()
DAY = dt.date(2027, 3, 1)
KINDS = ["CONVERSION", "REDEMPTION", "REFUND", "COMPENSATION", "ADJUSTMENT"]
BATCH_CHECKS = {"fee is rate x (received - refunds)", "batch positions recomputed"}

obligation = st.tuples(
    st.integers(0, 4),
    st.integers(0, 4),
    st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("999.9999"), places=4),
    st.sampled_from(KINDS),
)


def test_batches_of_any_obligations_recompute_to_what_was_stored(db_url: str) -> None:
    loop = asyncio.new_event_loop()
    db = Database(db_url)

    @settings(
        max_examples=20 if "sqlite" in db_url else 8,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        rows=st.lists(obligation, min_size=1, max_size=30),
        size=st.integers(2, 5),
        fee_bps=st.sampled_from([0, 100, 250]),
        platform=st.booleans(),
    )
    def check(
        rows: list[tuple[int, int, Decimal, str]], size: int, fee_bps: int, platform: bool
    ) -> None:
        prefix = f"r{next(_n)}"
        config = Settings(database_url=db_url, platform_fee_bps=fee_bps)
        day = DAY + dt.timedelta(days=next(_n))

        async def run() -> None:
            await empty_database(db_url)

            async def setup(session: Any) -> list[str]:
                return await _merchants(session, prefix, size, platform)

            ids = await db.transaction(setup)
            data = [
                {
                    "kind": kind,
                    "debtor_id": ids[a % size],
                    "creditor_id": ids[b % size],
                    "program_code": f"{prefix.upper()}_{b % size}",
                    "points": 1,
                    "amount": amount,
                    "reference": f"r{i}",
                    "occurred_at": utcnow(),
                    "business_date": day,
                }
                for i, (a, b, amount, kind) in enumerate(rows)
                if a % size != b % size
            ]

            async def work(session: Any) -> None:
                if data:
                    await session.execute(insert(Obligation), data)
                await settle(session, config, day, "test")

            await db.transaction(work)
            async with db.read() as session:
                found = [v for v in await verify(session) if v.check in BATCH_CHECKS]
                assert found == []
                nets = list(await session.scalars(select(NetPosition.net)))
                paid = list(await session.scalars(select(PaymentInstruction.amount)))
                fees = list(
                    await session.scalars(select(Obligation.amount).where(Obligation.kind == "FEE"))
                )
            cent = Decimal("0.01")
            assert sum(nets, Decimal(0)) == 0
            assert all(x == x.quantize(cent) for x in [*nets, *paid, *fees])

        loop.run_until_complete(run())

    try:
        check()
    finally:
        loop.run_until_complete(db.dispose())
        loop.close()
