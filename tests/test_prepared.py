"""hub.db.Prepared (a hot statement run straight through asyncpg on PostgreSQL, through
SQLAlchemy on SQLite), hub.db.adopted (its rows as the session's instances) and
hub.db.write_changes (a changed row's UPDATE without the unit of work): the same values,
errors, transactions and instances as SQLAlchemy's own execution, loading and flush."""

from __future__ import annotations

import datetime as dt
import gc
import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import BigInteger, String, bindparam, event, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from hub.db import (
    Database,
    ExactDecimal,
    JSONText,
    Prepared,
    Reads,
    UTCDateTime,
    adopted,
    get_row,
    insert_row,
    new_row,
    send_deferred,
    utcnow,
    write_changes,
)
from hub.enums import AccountKind, EntryKind, MerchantCategory, MerchantStatus
from hub.ledger.core import Movement
from hub.ledger.points import Points
from hub.member_view import member_views
from hub.models import Account, IdempotencyRecord, Merchant
from hub.models.base import table_of
from tests.ledger.test_concurrency import _member_with

_KEYS = table_of(IdempotencyRecord)
_CLAIM = Prepared(
    insert(_KEYS)
    .values({c: bindparam(c, type_=_KEYS.c[c].type) for c in ("scope", "key", "operation")})
    .values(request_hash=literal("0" * 64), result=literal("{}"), created_at=bindparam("at"))
    .returning(_KEYS.c.id, _KEYS.c.created_at)
)


def _claim(key: str) -> dict[str, Any]:
    return {"scope": "test", "key": key, "operation": "prepared", "at": utcnow()}


async def test_a_prepared_read_gives_what_sqlalchemy_gives(db_url: str) -> None:
    """Parameters and result columns go through the types' own conversions (an aware UTC
    datetime, an exact Decimal, a JSON value kept as text), and a literal of the SQL is
    sent as its value."""
    statement = select(
        bindparam("at", type_=UTCDateTime()).label("at"),
        bindparam("amount", type_=ExactDecimal()).label("amount"),
        bindparam("codes", type_=JSONText()).label("codes"),
        bindparam("n", type_=BigInteger()).label("n"),
        literal("fixed", String()).label("fixed"),
    )
    params = {
        "at": dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        "amount": Decimal("12.345"),
        "codes": ["HUB", "TEA"],
        "n": 2**40,
    }
    db = Database(db_url)
    try:
        async with db.write() as session:
            ours = await Prepared(statement).row(session, params)
            theirs = (await session.execute(statement, params)).one()._mapping
        assert ours is not None and dict(ours) == dict(theirs)
        assert ours["at"] == params["at"] and ours["at"].tzinfo == dt.UTC
        assert ours["amount"] == Decimal("12.345") and ours["codes"] == ["HUB", "TEA"]
        assert ours["n"] == 2**40 and ours["fixed"] == "fixed"
    finally:
        await db.dispose()


async def test_a_prepared_statement_belongs_to_the_transaction(db_url: str) -> None:
    """The transaction's first statement begins it (a raw statement outside it would commit
    on its own): what the block wrote is gone when it fails, kept when it commits."""
    db = Database(db_url)
    try:
        with pytest.raises(RuntimeError):
            async with db.write() as session:
                assert await _CLAIM.row(session, _claim("rolled-back")) is not None
                raise RuntimeError("the block fails")
        async with db.write() as session:
            kept = await _CLAIM.row(session, _claim("committed"))
        assert kept is not None and kept["created_at"].tzinfo == dt.UTC
        async with db.read() as session:
            stored = await session.scalars(select(_KEYS.c.key).where(_KEYS.c.scope == "test"))
            assert list(stored) == ["committed"]
    finally:
        await db.dispose()


async def test_a_constraint_broken_by_a_prepared_statement_is_sqlalchemys_error(
    db_url: str,
) -> None:
    """A unique key taken twice raises SQLAlchemy's IntegrityError (which the hub's callers
    catch, e.g. a concurrent twin entry) with the driver's SQLSTATE, and, as the engines
    are configured, without the parameters in its text (a member's data stays out of
    logs)."""
    db = Database(db_url)
    try:
        async with db.write() as session:
            await _CLAIM.row(session, _claim("secret-555-0100"))
        with pytest.raises(IntegrityError) as raised:
            async with db.write() as session:
                await _CLAIM.row(session, _claim("secret-555-0100"))
        assert "secret-555-0100" not in str(raised.value)
        if db.dialect == "postgresql":
            assert raised.value.orig.sqlstate == "23505"  # type: ignore[union-attr]
    finally:
        await db.dispose()


async def test_statement_listeners_see_prepared_statements(db_url: str) -> None:
    """Counters (tests, `bench/`) listen for before_cursor_execute: a prepared statement is
    told to them as SQLAlchemy's are."""
    db = Database(db_url)
    seen: list[str] = []

    def note(*args: Any) -> None:
        seen.append(str(args[2]).split()[0])

    for engine in db.sync_engines:
        event.listen(engine, "before_cursor_execute", note)
    try:
        async with db.write() as session:
            await _CLAIM.row(session, _claim("counted"))
        assert "INSERT" in seen, seen
    finally:
        await db.dispose()


async def test_an_in_list_is_refused_on_postgresql(db_url: str) -> None:
    """An expanding parameter cannot be compiled once: refused, not run wrongly."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite runs every statement through SQLAlchemy")
    statement = select(_KEYS.c.id).where(_KEYS.c.key.in_(bindparam("keys", expanding=True)))
    db = Database(db_url)
    try:
        async with db.write() as session:
            with pytest.raises(TypeError, match="ANY"):
                await Prepared(statement).all(session, {"keys": ["a"]})
    finally:
        await db.dispose()


async def test_an_adopted_row_is_the_sessions_instance(db_url: str) -> None:
    """A row read as Core becomes the instance the session holds for it, refreshed (as
    populate_existing would), or a new persistent one: nothing is written for it, and a
    change to it is written as an UPDATE."""
    db = Database(db_url)
    try:
        account_id = await _member_with(db, 50)
        accounts = table_of(Account)
        read = Prepared(select(*accounts.c).where(accounts.c.id == bindparam("id")))
        async with db.write() as session:
            row = await read.row(session, {"id": account_id})
            assert row is not None
            account = adopted(session, Account, row)
            assert account.balance == 50 and account.id == account_id
            assert await session.get(Account, account_id) is account  # no second instance
            assert not session.new and not session.dirty
            again = adopted(session, Account, {**row, "balance": 49})
            assert again is account and account.balance == 49 and not session.dirty
            account.external_ref = "J-2"
        async with db.read() as session:
            stored = await session.get(Account, account_id)
            assert stored is not None and stored.external_ref == "J-2"
    finally:
        await db.dispose()


async def test_write_changes_writes_what_changed_as_a_flush_would(db_url: str) -> None:
    """The columns that changed, and only those, in one UPDATE; the row then clean (a flush
    writes nothing more for it); a value set back to what it was is no change; and what is
    written is what the database then holds."""
    db = Database(db_url)
    try:
        account_id = await _member_with(db, 50)
        sent: list[str] = []

        def seen(*args: Any) -> None:
            sent.append(" ".join(str(args[2]).split()))

        for engine in db.sync_engines:
            event.listen(engine, "before_cursor_execute", seen)
        async with db.write() as session:
            account = await get_row(session, Account, account_id)
            assert account is not None
            before = account.external_ref
            account.external_ref = "J-9"
            account.balance = 50  # as it was: no change
            sent.clear()
            await write_changes(session, account)
            # Deferred on PostgreSQL (hub.db.defer): sent with the next statement.
            assert len(sent) == (0 if db.url.get_backend_name() == "postgresql" else 1), sent
            await send_deferred(session)
            assert len(sent) == 1 and "UPDATE accounts SET external_ref=" in sent[0], sent
            assert "balance" not in sent[0], sent
            assert not session.dirty and account.external_ref == "J-9"
            await session.flush()
            await write_changes(session, account)  # nothing changed since
            assert len(sent) == 1, sent
            account.external_ref = before
            account.external_ref = "J-10"
            await session.flush()  # the unit of work still writes a later change
            assert len(sent) == 2, sent
        async with db.read() as session:
            stored = await session.get(Account, account_id)
            assert stored is not None and stored.external_ref == "J-10" and stored.balance == 50
    finally:
        await db.dispose()


async def test_insert_row_writes_what_the_new_row_holds_and_keeps_it(db_url: str) -> None:
    """A new row made with new_row is inserted as it stands, one INSERT, and is then the
    session's clean instance of it, held (found again without a read); a row whose
    defaulted column was left unset is refused, nothing written."""
    db = Database(db_url)
    sent: list[str] = []
    for engine in db.sync_engines:
        event.listen(engine, "before_cursor_execute", lambda *a: sent.append(str(a[2]).split()[0]))
    try:
        values: dict[str, Any] = {
            "id": "jade",
            "name": "Jade",
            "category": MerchantCategory.RESTAURANT,
            "status": MerchantStatus.ACTIVE,
            "compensation_percent": Decimal("12.5"),
        }
        async with db.write() as session:
            with pytest.raises(AssertionError, match="created_at"):
                await insert_row(session, new_row(Merchant, **values))
            made = new_row(Merchant, **values, created_at=utcnow())
            sent.clear()
            await insert_row(session, made)
            assert [s for s in sent if s != "BEGIN"] == ["INSERT"], sent
            assert not session.new and not session.dirty
            assert await get_row(session, Merchant, "jade") is made
            assert [s for s in sent if s != "BEGIN"] == ["INSERT"], sent
        async with db.read() as session:
            stored = await session.get(Merchant, "jade")
            assert stored is not None and stored.compensation_percent == Decimal("12.5")
    finally:
        await db.dispose()


def test_rows_are_made_before_any_query_has_configured_the_mappers() -> None:
    """A process whose first ORM work is a hot path's (a conversion's posted entry, a read
    row adopted) makes its instances without a constructor, whose first call would have
    configured the mappers: they are configured all the same (a fresh interpreter)."""
    code = (
        "import datetime as dt\n"
        "from hub.db import detached, new_row\n"
        "from hub.models import Entry, Merchant\n"
        "entry = detached(Entry, {'id': 7, 'kind': 'ACCRUAL', 'program_code': 'HUB',"
        " 'member_id': None, 'actor': 'a', 'idempotency_key': None,"
        " 'occurred_at': dt.datetime.now(dt.UTC), 'business_date': dt.date.today(),"
        " 'reference': None, 'memo': None})\n"
        "assert entry.id == 7 and entry.program_code == 'HUB'\n"
        "assert new_row(Merchant, id='jade').id == 'jade'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


class _ThroughSqlAlchemy(Reads):
    """A single read's connection that sends every statement through SQLAlchemy."""

    dialect = "any"

    def __init__(self, reads: Reads) -> None:
        self._reads = reads

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return await self._reads.execute(statement, parameters)


async def test_a_members_view_read_as_prepared_is_what_sqlalchemy_reads(db_url: str) -> None:
    """The balances read (on PostgreSQL a Prepared statement with an array of ids, sent
    through asyncpg) gives what SQLAlchemy's own execution gives: the same members,
    accounts, holds and expiring lots, the same types (aware datetimes)."""
    db = Database(db_url)
    try:
        account_id = await _member_with(db, 50)
        expires = utcnow().replace(microsecond=0) + dt.timedelta(days=30)
        async with db.write() as session:
            account = await get_row(session, Account, account_id)
            assert account is not None
            movement = Movement(actor="test", business_date=expires.date())
            await Points(session).credit(
                account, 7, EntryKind.ACCRUAL, AccountKind.ISSUED, movement, expires
            )
            member_id = account.member_id
        assert member_id is not None
        async with db.single_read() as reads:
            fast = await member_views(reads, [member_id, "mem_none"])
            slow = await member_views(_ThroughSqlAlchemy(reads), [member_id, "mem_none"])
        assert fast == slow and list(fast) == [member_id]
        (view,) = fast[member_id].accounts
        assert view.balance == 57 and view.held == 0
        assert [(lot.remaining, lot.expires_at) for lot in view.lots] == [(7, expires)]
        assert view.lots[0].expires_at.tzinfo is not None
    finally:
        await db.dispose()


async def test_get_row_is_session_get_for_the_hot_paths(db_url: str) -> None:
    """get_row gives the instance the session holds without a statement; locked, it reads
    the row again (FOR UPDATE on PostgreSQL) and refreshes that instance; a key no row has
    gives None."""
    db = Database(db_url)
    seen: list[str] = []

    def note(*args: Any) -> None:
        seen.append(str(args[2]))

    try:
        account_id = await _member_with(db, 50)
        for engine in db.sync_engines:
            event.listen(engine, "before_cursor_execute", note)
        async with db.write() as session:
            first = await get_row(session, Account, account_id)
            assert first is not None and first.balance == 50
            reads = len(seen)
            assert await get_row(session, Account, account_id) is first and len(seen) == reads
            await session.execute(
                update(table_of(Account))
                .where(table_of(Account).c.id == account_id)
                .values(balance=51)
            )
            locked = await get_row(session, Account, account_id, lock=True)
            assert locked is first and first.balance == 51
            if db.dialect == "postgresql":
                assert seen[-1].endswith("FOR NO KEY UPDATE"), seen[-1]
            assert await get_row(session, Account, -1) is None
    finally:
        await db.dispose()


async def test_a_read_replacing_an_orm_read_flushes_first(db_url: str) -> None:
    """A read made with autoflush sees the session's pending changes, as the ORM read it
    replaces did (the hot paths' account and lot reads)."""
    db = Database(db_url)
    try:
        account_id = await _member_with(db, 50)
        accounts = table_of(Account)
        query = select(accounts.c.external_ref).where(accounts.c.id == bindparam("id"))
        async with db.write() as session:
            account = await session.get(Account, account_id)
            assert account is not None
            account.external_ref = "J-9"  # pending, not flushed
            seen = await Prepared(query, autoflush=True).scalar(session, {"id": account_id})
            assert seen == "J-9"
    finally:
        await db.dispose()


async def test_a_row_a_write_transaction_made_is_held_to_its_end(db_url: str) -> None:
    """SQLAlchemy's identity map holds rows weakly: a redemption made by one step and let
    go of was read back by the next step that asked for it by key (once the garbage
    collector had run, so on some requests only). A write transaction holds the rows it
    inserts, as it holds those it loads."""
    db = Database(db_url)
    seen: list[str] = []
    for engine in db.sync_engines:
        event.listen(engine, "before_cursor_execute", lambda *args: seen.append(str(args[2])))
    try:
        async with db.write() as session:
            made = IdempotencyRecord(
                scope="test",
                key="held",
                operation="held",
                request_hash="0" * 64,
                result="{}",
                created_at=utcnow(),
            )
            session.add(made)
            await session.flush()
            key = made.id
            del made
            gc.collect()
            seen.clear()
            found = await session.get(IdempotencyRecord, key)
            assert found is not None and found.key == "held"
            assert seen == [], seen
    finally:
        await db.dispose()
