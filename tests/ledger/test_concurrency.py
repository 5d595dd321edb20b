"""Concurrent spends never overdraw (PostgreSQL row locks; SQLite BEGIN IMMEDIATE)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from hub.auth import Principal
from hub.db import Database
from hub.enums import AccountKind, ConnectorKind, EntryKind, MerchantCategory, Role
from hub.errors import InsufficientPoints
from hub.ledger import Movement, Points
from hub.members import Enrollment, account_of, enroll
from hub.merchants import NewMerchant, register_merchant
from hub.models import Account
from hub.verify import verify

ADMIN = Principal(key_id="test", role=Role.ADMIN)


async def _member_with(db: Database, points: int) -> int:
    async def work(session: Any) -> int:
        await register_merchant(
            session,
            NewMerchant(
                id="jade",
                name="Jade",
                category=MerchantCategory.RESTAURANT,
                program_code="JADE",
                program_name="Jade",
                unit_name="point",
                connector=ConnectorKind.HOSTED,
                connector_config=None,
                point_value=Decimal("0.125"),
                accrual_rate=Decimal(1),
                expiry_months=None,
                compensation_percent=Decimal(10),
            ),
        )
        member = await enroll(session, ADMIN, Enrollment("JADE", "J-1", "x"))
        account = await account_of(session, member.id, "JADE")
        assert account is not None
        movement = Movement(actor="test", business_date=account.created_at.date())
        await Points(session).credit(
            account, points, EntryKind.ACCRUAL, AccountKind.ISSUED, movement, None
        )
        return account.id

    return await db.transaction(work)


async def test_200_concurrent_spends_of_one_point_against_50(db_url: str) -> None:
    db = Database(db_url, pool_size=20)
    try:
        account_id = await _member_with(db, 50)

        async def spend() -> bool:
            async def work(session: Any) -> None:
                account = await session.get(Account, account_id)
                movement = Movement(actor="test", business_date=account.created_at.date())
                await Points(session).debit(
                    account, 1, EntryKind.REDEMPTION, AccountKind.REDEEMED, movement
                )

            try:
                await db.transaction(work)
            except InsufficientPoints:
                return False
            return True

        results = await asyncio.gather(*[spend() for _ in range(200)])
        assert results.count(True) == 50
        assert results.count(False) == 150
        async with db.read() as session:
            account = await session.get(Account, account_id)
            assert account is not None and account.balance == 0
            assert await verify(session) == []
    finally:
        await db.dispose()
