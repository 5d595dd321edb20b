"""Deferred writes (hub.db.defer): on PostgreSQL a write transaction's entries, row updates
and stock moves go with its next statement, most often the one it sends as it commits.
Whatever reads after them sees them; two writes of one row are never one statement; a
write the database refuses at the commit fails the whole transaction, nothing written."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm.attributes import set_committed_value

from hub.config import Settings
from hub.db import Database, send_deferred
from hub.enums import AccountKind, EntryKind
from hub.errors import InsufficientPoints, RetryTransaction
from hub.ledger import Movement, Points
from hub.ledger.core import Journal, Side, TakenLots
from hub.ledger.points import OPEN_LOTS, OpenLot
from hub.members import accounts_of, lock_member_and_accounts
from hub.models import Account, Entry, Lot
from hub.verify import verify
from tests.helpers import (
    accrue,
    convert,
    enroll,
    register,
    running_app,
    set_rate,
    verify_ledger,
)
from tests.ledger.test_concurrency import _member_with
from tests.test_hot_paths import _quiet, statements


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


async def test_lots_read_with_a_lock_that_waited_are_read_again(settings: Settings) -> None:
    """A conversion reads the member's lots with its lock (one statement with the key's
    claim). When that lock waited for another transaction that spent from those lots, what
    the statement read of them is older than the lock: they are read again, not taken as
    read, and the debit takes the lots as they now stand (soonest-expiring first)."""
    if settings.database_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer at a time: no lock waits")
    async with running_app(_quiet(settings)) as api:
        await register(api, "haowu", "HUB", category="PLATFORM", expiryMonths=12)
        await register(api, "teahouse", "TEA")
        await set_rate(api, "HUB", "TEA", "1")
        member = await enroll(api, "HUB", "H-1")
        await enroll(api, "TEA", "T-1", member_id=member)
        for amount in ("30", "100"):  # two lots: 30 then 100, the first expiring first
            assert (await accrue(api, member, "HUB", amount))["userErrors"] == []
        await convert(api, member, "HUB", "TEA", 1)  # the process keeps what it keeps
        db = Database(settings.database_url)
        try:
            with statements(api, whole=True) as sent:
                async with db.write() as session:  # spends what is left of the first lot
                    assert await lock_member_and_accounts(session, member, ["HUB"])
                    account = (await accounts_of(session, member, ["HUB"]))["HUB"]
                    movement = Movement(actor="test", business_date=account.created_at.date())
                    await Points(session).debit(
                        account, 29, EntryKind.REDEMPTION, AccountKind.REDEEMED, movement
                    )
                    waiting = asyncio.create_task(convert(api, member, "HUB", "TEA", 50))
                    await asyncio.sleep(0.5)  # the conversion waits for the member's lock
                    assert not waiting.done()
                done = await waiting
        finally:
            await db.dispose()
        assert done["userErrors"] == [] and done["conversion"]["status"] == "COMPLETED", done
        # One attempt (no RetryTransaction), whose lots were read again after the lock.
        assert len([s for s in sent if s.startswith("WITH claim AS")]) == 1, sent
        assert len([s for s in sent if s.startswith("SELECT lots.")]) == 1, sent
        lots = await api.gql(
            "query M($id: ID!) { member(id: $id) { accounts { program { code } balance "
            "expiring { points } } } }",
            {"id": member},
        )
        (hub,) = [a for a in lots["member"]["accounts"] if a["program"]["code"] == "HUB"]
        assert hub["balance"] == 50 and [lot["points"] for lot in hub["expiring"]] == [50]
        assert await verify_ledger(settings.database_url) == []


async def test_a_debit_of_lots_that_hold_less_than_it_read_runs_again(db_url: str) -> None:
    """The lots a debit takes from are checked again by its write: one kept with less than
    the debit read (made so here) makes the transaction run again (RetryTransaction), nothing
    written."""
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite writes the debit's lots as it reads them")
    db = Database(db_url)
    try:
        account_id = await _member_with(db, 50)

        async def credit_50(session: Any) -> None:
            account = (await Journal(session).lock([account_id]))[account_id]
            movement = Movement(actor="test", business_date=account.created_at.date())
            await Points(session).credit(
                account, 50, EntryKind.ACCRUAL, AccountKind.ISSUED, movement, None
            )

        await db.transaction(credit_50)  # two lots of 50
        with pytest.raises(RetryTransaction):
            async with db.write() as session:
                account = (await Journal(session).lock([account_id]))[account_id]
                first = await session.scalar(
                    select(func.min(Lot.id)).where(Lot.account_id == account_id)
                )
                # As if read before another debit took from it: 80 in the first lot.
                session.info[OPEN_LOTS] = {account_id: [OpenLot(first, 80, None)]}
                movement = Movement(actor="test", business_date=account.created_at.date())
                await Points(session).debit(
                    account, 60, EntryKind.REDEMPTION, AccountKind.REDEEMED, movement
                )
                await send_deferred(session)
        async with db.read() as session:
            assert await session.scalar(select(func.count()).select_from(Entry)) == 2
            assert await verify(session) == []
    finally:
        await db.dispose()
