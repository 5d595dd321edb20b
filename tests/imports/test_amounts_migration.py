"""Migration 0022 gives accruals imported before imports kept purchase amounts their
amount (from their memos), so those purchases count for tiers and insights like any."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import create_async_engine

from hub.migrate import upgrade
from hub.models import AccrualAmount, Entry, Member, Merchant, Program
from tests.conftest import BACKENDS, empty_scratch_database

AT = dt.datetime(2026, 11, 1, 4, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_accruals_imported_before_0022_get_their_amounts(
    backend: str, tmp_path: Path
) -> None:
    async with empty_scratch_database(backend, tmp_path) as url:
        await upgrade(url, "0025")
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.execute(
                insert(Merchant.__table__).values(
                    id="haowu",
                    name="Haowu",
                    category="PLATFORM",
                    status="ACTIVE",
                    compensation_percent=Decimal(10),
                    created_at=AT,
                )
            )
            await conn.execute(
                insert(Program.__table__).values(
                    code="HUB",
                    merchant_id="haowu",
                    name="Haowu Points",
                    unit_name="point",
                    connector="HOSTED",
                    point_value=Decimal("0.1"),
                    accrual_rate=Decimal(1),
                    kind="STANDARD",
                    created_at=AT,
                )
            )
            await conn.execute(
                insert(Member.__table__).values(id="mbr_1", display_name="Li Wei", created_at=AT)
            )
            entries = [  # (kind, idempotency key, memo, amount kept by accruePoints)
                ("ACCRUAL", "imp_1:2", "purchase of 125.50 (anniversary)", None),
                ("ACCRUAL", "pos-7", "purchase of 80", Decimal(80)),
                ("ACCRUAL", "imp_1:3", "purchase of 0.07", None),
                ("REDEMPTION", "r-1", "purchase of 999", None),
            ]
            for index, (kind, key, memo, amount) in enumerate(entries, start=1):
                await conn.execute(
                    insert(Entry.__table__).values(
                        id=index,
                        kind=kind,
                        program_code="HUB",
                        member_id="mbr_1",
                        actor="test",
                        idempotency_key=key,
                        occurred_at=AT,
                        business_date=AT.date(),
                        reference=f"o-{index}",
                        memo=memo,
                    )
                )
                if amount is not None:
                    await conn.execute(
                        insert(AccrualAmount.__table__).values(
                            entry_id=index,
                            program_code="HUB",
                            member_id="mbr_1",
                            amount=amount,
                            occurred_at=AT,
                        )
                    )
        await engine.dispose()
        await upgrade(url)
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        AccrualAmount.entry_id,
                        AccrualAmount.member_id,
                        AccrualAmount.amount,
                        AccrualAmount.occurred_at,
                    ).order_by(AccrualAmount.entry_id)
                )
            ).all()
        await engine.dispose()
        assert [tuple(r) for r in rows] == [
            (1, "mbr_1", Decimal("125.5000"), AT),
            (2, "mbr_1", Decimal("80.0000"), AT),
            (3, "mbr_1", Decimal("0.0700"), AT),
        ]
