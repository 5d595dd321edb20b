"""An entry is written whole or not at all, even when the balance it was checked against
was stale: the database's own check refuses it, and nothing of it stays."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm.attributes import set_committed_value

from hub.db import Database, utcnow
from hub.enums import AccountKind, EntryKind
from hub.errors import InsufficientPoints
from hub.ledger import Journal, Movement, Side
from hub.models import Account, Entry, LotUse, Posting
from hub.verify import verify
from tests.ledger.test_holds_and_refunds import _member_with


async def _count(db: Database, model: Any) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_debit_checked_against_a_stale_balance_writes_nothing(db_url: str) -> None:
    db = Database(db_url)
    try:
        account_id = await _member_with(db, 1000)
        before = [await _count(db, m) for m in (Entry, Posting, LotUse)]

        async def spend(session: Any) -> None:
            journal = Journal(session)
            account = (await journal.lock([account_id]))[account_id]
            set_committed_value(account, "balance", 5000)  # what a stale read would say
            sink = await journal.system_account("JADE", AccountKind.REDEEMED)
            movement = Movement(actor="test", business_date=utcnow().date())
            await journal.post(
                EntryKind.REDEMPTION,
                "JADE",
                [Side(account, -3000), Side(sink, 3000)],
                movement,
                member_id=account.member_id,
            )

        with pytest.raises(InsufficientPoints, match="3,000 are needed"):
            await db.transaction(spend)
        assert [await _count(db, m) for m in (Entry, Posting, LotUse)] == before
        async with db.read() as session:
            account = await session.get(Account, account_id)
            assert account is not None and account.balance == 1000
            assert await verify(session) == []
    finally:
        await db.dispose()
