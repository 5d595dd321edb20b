"""Migration 0017 carries the amounts of accruals made before it (from their memos), so
members qualify for tiers on the purchases they already made."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import create_async_engine

from hub.migrate import upgrade
from hub.models import AccrualAmount, Entry
from tests.conftest import BACKENDS, empty_scratch_database, seed_old_world

AT = dt.datetime(2026, 6, 1, 4, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_accruals_before_0017_keep_their_amounts(backend: str, tmp_path: Path) -> None:
    async with empty_scratch_database(backend, tmp_path) as url:
        await upgrade(url, "0008")
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await seed_old_world(conn, AT)
            memos = [
                ("ACCRUAL", "purchase of 125.50 (Anniversary)"),
                ("ACCRUAL", "purchase of 80"),
                ("ACCRUAL", "imported by hand"),
                ("REDEMPTION", "purchase of 999"),
            ]
            for index, (kind, memo) in enumerate(memos, start=1):
                await conn.execute(
                    insert(Entry.__table__).values(
                        id=index,
                        kind=kind,
                        program_code="HUB",
                        member_id="mbr_1",
                        actor="test",
                        occurred_at=AT,
                        business_date=AT.date(),
                        reference=f"o-{index}",
                        memo=memo,
                    )
                )
        await engine.dispose()
        await upgrade(url)
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        AccrualAmount.entry_id, AccrualAmount.member_id, AccrualAmount.amount
                    ).order_by(AccrualAmount.entry_id)
                )
            ).all()
        await engine.dispose()
        assert [tuple(r) for r in rows] == [
            (1, "mbr_1", Decimal("125.5000")),
            (2, "mbr_1", Decimal("80.0000")),
        ]
