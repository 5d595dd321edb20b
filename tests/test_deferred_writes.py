"""Deferred writes (hub.db.defer): on PostgreSQL a write transaction's entries, row updates
and stock moves go with its next statement, most often the one it sends as it commits.
Whatever reads after them sees them; two writes of one row are never one statement; a
write the database refuses at the commit fails the whole transaction, nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm.attributes import set_committed_value

from hub.db import Database
from hub.enums import AccountKind, EntryKind
from hub.errors import InsufficientPoints
from hub.ledger import Movement
from hub.ledger.core import Journal, Side, TakenLots
from hub.models import Account, Entry, Lot
from hub.verify import verify
from tests.ledger.test_concurrency import _member_with


@contextmanager
def _sent(db: Database) -> Iterator[list[str]]:
    sent: list[str] = []

    def seen(*args: Any) -> None:
        sent.append(" ".join(str(args[2]).split()))

    for engine in db.sync_engines:
        event.listen(engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        for engine in db.sync_engines:
            event.remove(engine, "before_cursor_execute", seen)


async def _spend(journal: Journal, account: Account, points: int) -> None:
    """A debit of the account's one lot (the credit's)."""
    sink = await journal.system_account(account.program_code, AccountKind.REDEEMED)  # kept
    movement = Movement(actor="test", business_date=account.created_at.date())
    sides = [Side(account, -points), Side(sink, points)]
    (lot,) = journal.session.info["test_lots"]
    taken = TakenLots(((lot, points),))
    await journal.post(EntryKind.REDEMPTION, account.program_code, sides, movement, rider=taken)


async def _locked(journal: Journal, account_id: int) -> Account:
    """The account locked, its system account and its lot read first."""
    account = (await journal.lock([account_id]))[account_id]
    await journal.system_account(account.program_code, AccountKind.REDEEMED)
    lots = await journal.session.scalars(select(Lot.id).where(Lot.account_id == account_id))
    journal.session.info["test_lots"] = list(lots)
    return account


async def test_reads_see_deferred_writes_and_no_row_is_written_twice_in_one_statement(
    db_url: str,
) -> None:
    db = Database(db_url)
    postgres = not db.is_sqlite
    try:
        account_id = await _member_with(db, 50)
        async with db.write() as session:
            journal = Journal(session)
            account = await _locked(journal, account_id)
            with _sent(db) as sent:
                await _spend(journal, account, 10)
                assert (len(sent) == 0) == postgres, sent  # deferred on PostgreSQL
                # The same account again: the first entry is sent first, on its own.
                await _spend(journal, account, 5)
                if postgres:
                    assert len(sent) == 1 and sent[0].startswith("WITH p0_moved_0 AS"), sent
                    assert "p1_moved_0" not in sent[0], sent
                # A read sends what is still deferred first, and sees it.
                sent.clear()
                stored = await session.scalar(
                    select(Account.balance)
                    .where(Account.id == account_id)
                    .execution_options(populate_existing=True)
                )
                assert stored == 35 and account.balance == 35
                if postgres:
                    assert len(sent) == 2 and sent[0].startswith("WITH p0_moved_0 AS"), sent
        async with db.read() as session:
            count = await session.scalar(select(func.count()).select_from(Entry))
            assert count == 3  # the credit and both debits
        async with db.read() as session:
            assert await verify(session) == []
    finally:
        await db.dispose()


async def test_a_balance_the_commit_cannot_move_fails_the_whole_transaction(db_url: str) -> None:
    """The balance a deferred entry checked (the one the transaction holds) is checked again
    by its write: a stale one (made so here) fails the transaction as it commits, and none
    of its writes stays."""
    db = Database(db_url)
    try:
        account_id = await _member_with(db, 50)
        with pytest.raises(InsufficientPoints):
            async with db.write() as session:
                journal = Journal(session)
                account = await _locked(journal, account_id)
                await _spend(journal, account, 20)
                set_committed_value(account, "balance", 1000)  # stale, as if read unlocked
                await _spend(journal, account, 500)
        async with db.read() as session:
            assert await session.scalar(select(func.count()).select_from(Entry)) == 1
            stored = await session.get(Account, account_id)
            assert stored is not None and stored.balance == 50
        async with db.read() as session:
            assert await verify(session) == []
    finally:
        await db.dispose()
