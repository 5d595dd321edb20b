"""Write transactions and single reads on PostgreSQL run on lanes: pooled connections the
process keeps checked out between them (hub.db._Lanes), so that each does not pay for
SQLAlchemy's checkout and checkin. What a pooled connection promises, a lane keeps: one
left inside a transaction is never written through, one the database closed is not lent,
the pool keeps room for every other use, and nothing is held once the database is
disposed of."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession

import hub.db
from hub.db import Database

_NOTES = text("CREATE TABLE IF NOT EXISTS lane_notes (n INTEGER)")
_ADMIN = "postgresql://root@127.0.0.1:5432/"


@pytest.fixture
def pg_url(db_url: str) -> str:
    if db_url.startswith("sqlite"):
        pytest.skip("lanes are PostgreSQL's (SQLite has one writer, and reads on its loop)")
    return db_url


async def _notes(db: Database) -> list[int]:
    async with db.single_read() as reads:
        found = await reads.execute(text("SELECT n FROM lane_notes ORDER BY n"))
        return list(found.scalars().all())


async def _insert(db: Database, n: int) -> None:
    await db.transaction(lambda s: s.execute(text(f"INSERT INTO lane_notes VALUES ({n})")))


def _checkouts(db: Database) -> list[int]:
    """A list that grows by one at each checkout from the pool."""
    taken: list[int] = []

    @event.listens_for(db.engine.sync_engine.pool, "checkout")
    def _taken(*_: Any) -> None:
        taken.append(1)

    return taken


async def test_writes_and_reads_in_turn_take_no_connection_from_the_pool(pg_url: str) -> None:
    db = Database(pg_url)
    try:
        await db.transaction(lambda s: s.execute(_NOTES))
        await _notes(db)  # one lane each, taken from the pool once
        taken = _checkouts(db)
        for n in range(20):
            await _insert(db, n)
            assert await _notes(db) == list(range(n + 1))
        assert taken == []
    finally:
        await db.transaction(lambda s: s.execute(text("DROP TABLE lane_notes")))
        await db.dispose()


async def test_a_lane_left_inside_a_transaction_is_never_written_through(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write whose rollback was cut short (a request cancelled twice) leaves its lane's
    connection inside its transaction: that lane is closed as it comes back, so the
    stale work never lands with a later write's, and its locks go with it."""
    db = Database(pg_url)
    try:
        await db.transaction(lambda s: s.execute(_NOTES))

        async def cut_short(adapter: Any) -> None:
            adapter._transaction = None  # as _rollback does first; its ROLLBACK never sent

        async def cancelled(session: AsyncSession) -> None:
            await session.execute(text("INSERT INTO lane_notes VALUES (7)"))
            raise asyncio.CancelledError

        monkeypatch.setattr(hub.db, "_rollback", cut_short)
        with pytest.raises(asyncio.CancelledError):
            await db.transaction(cancelled)
        monkeypatch.undo()
        await _insert(db, 1)
        assert await _notes(db) == [1]
    finally:
        # (a connection still inside that transaction would hold its lock: this would wait)
        await asyncio.wait_for(
            db.transaction(lambda s: s.execute(text("DROP TABLE lane_notes"))), timeout=10
        )
        await db.dispose()


async def test_a_lane_whose_backend_ended_is_not_lent(pg_url: str) -> None:
    """The database ends a lane's backend while it is idle: the next write finds it closed
    (asyncpg sees the socket close) and runs on another connection."""
    db = Database(pg_url)
    try:
        await db.transaction(lambda s: s.execute(_NOTES))
        pid = await db.transaction(
            lambda s: s.scalar(text("SELECT pg_backend_pid()"))  # type: ignore[arg-type,return-value]
        )
        admin = await asyncpg.connect(_ADMIN + "test")
        try:
            await admin.execute("SELECT pg_terminate_backend($1, 5000)", pid)
        finally:
            await admin.close()
        await asyncio.sleep(0.05)  # the loop reads the socket's end
        now = await db.transaction(
            lambda s: s.scalar(text("SELECT pg_backend_pid()"))  # type: ignore[arg-type,return-value]
        )
        assert now != pid
    finally:
        await db.transaction(lambda s: s.execute(text("DROP TABLE lane_notes")))
        await db.dispose()


async def test_lanes_leave_the_pool_room_and_writes_past_them_still_run(pg_url: str) -> None:
    """With a pool of 4 (2 and 2 more), one lane a kind: three writes at once each run (the
    ones past the write lane on connections of the pool), and a read session still gets
    the last connection: the idle read lane goes back to the pool for it, instead of the
    session waiting out the pool's timeout."""
    db = Database(pg_url, pool_size=2, max_overflow=2, pool_timeout=5)
    try:
        await db.transaction(lambda s: s.execute(_NOTES))
        await _notes(db)
        gate = asyncio.Event()

        async def held(n: int) -> None:
            async def work(session: AsyncSession) -> None:
                await session.execute(text(f"INSERT INTO lane_notes VALUES ({n})"))
                await gate.wait()

            await db.transaction(work)

        writes = [asyncio.create_task(held(n)) for n in range(3)]
        await asyncio.sleep(0.2)
        async with db.read() as session:  # the fourth connection
            assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
        gate.set()
        await asyncio.gather(*writes)
        assert await _notes(db) == [0, 1, 2]
    finally:
        await db.transaction(lambda s: s.execute(text("DROP TABLE lane_notes")))
        await db.dispose()


async def _backends(name: str | None) -> int:
    admin = await asyncpg.connect(_ADMIN + "test")
    try:
        found = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        return int(found)
    finally:
        await admin.close()


async def test_disposing_of_the_database_closes_its_lanes(pg_url: str) -> None:
    db = Database(pg_url)
    name = db.url.database
    before = await _backends(name)
    await db.transaction(lambda s: s.execute(text("SELECT 1")))
    async with db.single_read() as reads:
        await reads.execute(text("SELECT 1"))
    assert await _backends(name) == before + 2  # a lane of each kind
    await db.dispose()
    for _ in range(50):  # a closed connection's backend ends a moment later
        if await _backends(name) == before:
            break
        await asyncio.sleep(0.05)
    assert await _backends(name) == before


async def test_work_cancelled_while_its_statement_runs_leaves_no_lane_behind(
    pg_url: str,
) -> None:
    """A request cancelled while its transaction, or its single read, waits for the database
    (a server shutting down): its work is rolled back, and the writes and reads after it
    run, on its lane or another."""
    db = Database(pg_url)
    try:
        await db.transaction(lambda s: s.execute(_NOTES))

        async def slow(session: AsyncSession) -> None:
            await session.execute(text("INSERT INTO lane_notes VALUES (9)"))
            await session.execute(text("SELECT pg_sleep(5)"))

        for _ in range(3):
            task = asyncio.create_task(db.transaction(slow))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await _insert(db, 1)

        async def slow_read() -> None:
            async with db.single_read() as reads:
                await reads.execute(text("SELECT pg_sleep(5)"))

        for _ in range(3):
            task = asyncio.create_task(slow_read())
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert await _notes(db) == [1, 1, 1]
    finally:
        await asyncio.wait_for(
            db.transaction(lambda s: s.execute(text("DROP TABLE lane_notes"))), timeout=10
        )
        await db.dispose()


async def test_a_lane_whose_ping_fails_is_closed_not_given_back_to_the_pool(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lane idle long enough to be pinged, whose ping fails while asyncpg still says it
    is open: it is closed (invalidated), so that the pool never lends it to anyone, and the
    write runs on another connection."""
    db = Database(pg_url)
    try:
        await db.transaction(lambda s: s.execute(text("SELECT 1")))
        invalidated: list[int] = []

        @event.listens_for(db.engine.sync_engine.pool, "invalidate")
        def _gone(*_: Any) -> None:
            invalidated.append(1)

        sent = asyncpg.Connection.execute
        pinged: list[asyncpg.Connection] = []

        async def ping_fails(self: asyncpg.Connection, query: str, *args: Any, **kw: Any) -> Any:
            if query == "SELECT 1":
                pinged.append(self)
                raise asyncpg.exceptions.InternalClientError("another operation is in progress")
            return await sent(self, query, *args, **kw)

        monkeypatch.setattr(hub.db, "PING_IDLE_SECONDS", 0.0)
        monkeypatch.setattr(asyncpg.Connection, "execute", ping_fails)
        found = await db.transaction(
            lambda s: s.scalar(text("SELECT 2"))  # type: ignore[arg-type,return-value]
        )
        assert found == 2
        # Closed at once: the pool did not have to find it out again by a ping of its own.
        assert invalidated == [1] and len(pinged) == 1, (invalidated, pinged)
        assert pinged[0].is_closed()
    finally:
        monkeypatch.undo()
        await db.dispose()


async def test_lanes_idle_since_a_burst_go_back_and_the_pool_keeps_its_size(
    pg_url: str,
) -> None:
    """After a burst a process keeps no more connections open than its pool's size and
    the lanes still in use: lanes unused for a while go back to the pool (the periodic
    "idle-lanes" job), which closes those past its size (outside attack, stop 45: 54
    connections of three processes stayed open after a burst)."""
    db = Database(pg_url, pool_size=1, max_overflow=4)  # a lane of each kind
    name = db.url.database
    try:
        before = await _backends(name)
        await db.transaction(lambda s: s.execute(text("SELECT 1")))
        async with db.single_read() as reads:
            await reads.execute(text("SELECT 1"))
        assert await _backends(name) == before + 2  # the pool's one, and one past it
        assert await db.shed_idle_lanes(idle_seconds=3600) == 0  # used just now: kept
        assert await db.shed_idle_lanes(idle_seconds=0) == 2
        for _ in range(50):
            if await _backends(name) == before + 1:
                break
            await asyncio.sleep(0.05)
        assert await _backends(name) == before + 1
        await db.transaction(lambda s: s.execute(text("SELECT 1")))  # lanes made again
    finally:
        await db.dispose()
