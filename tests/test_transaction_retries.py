"""Database.transaction runs its work again after a lost race, and only then: the first
attempt runs without the retrying machinery (the hot paths' common case), the later ones
under tenacity, with the same limit on attempts."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection as Adapted
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

import hub.db
from hub.config import Settings
from hub.db import Database, Prepared
from hub.errors import InvalidInput, LostConnection, RetryTransaction
from tests.helpers import (
    BALANCES,
    CONVERT,
    Api,
    accrue,
    balances,
    convert,
    enroll,
    register,
    running_app,
    set_rate,
    verify_ledger,
)


async def _run(db_url: str, failures: list[Exception], attempts: int) -> tuple[list[int], str]:
    db = Database(db_url)
    calls: list[int] = []

    async def work(session: AsyncSession) -> str:
        calls.append(len(calls) + 1)
        if failures:
            raise failures.pop(0)
        return "done"

    try:
        return calls, await db.transaction(work, attempts=attempts)
    finally:
        await db.dispose()


async def test_a_lost_race_is_run_again_until_it_wins(db_url: str) -> None:
    calls, result = await _run(db_url, [RetryTransaction(), RetryTransaction()], attempts=8)
    assert (calls, result) == ([1, 2, 3], "done")


async def test_a_refusal_is_not_run_again(db_url: str) -> None:
    with pytest.raises(InvalidInput):
        await _run(db_url, [InvalidInput("no", field=("x",))], attempts=8)


@pytest.mark.parametrize("attempts", [1, 2, 3])
async def test_attempts_bound_the_runs(db_url: str, attempts: int) -> None:
    db = Database(db_url)
    calls: list[int] = []

    async def work(session: AsyncSession) -> None:
        calls.append(1)
        raise RetryTransaction()

    try:
        with pytest.raises(RetryTransaction):
            await db.transaction(work, attempts=attempts)
    finally:
        await db.dispose()
    assert len(calls) == attempts


# ---------------------------------------------------------------- a lost connection

_END_MY_BACKEND = text("SELECT pg_terminate_backend(pg_backend_pid())")
_NOTES = text("CREATE TABLE IF NOT EXISTS retry_notes (n INTEGER)")


def _postgres_only(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has no server to lose a connection to")


async def _notes(db: Database) -> int:
    async with db.single_read() as reads:
        return int((await reads.execute(text("SELECT count(*) FROM retry_notes"))).scalar_one())


@pytest.mark.parametrize("lost", [1, 3])
async def test_a_connection_lost_before_the_commit_runs_the_work_again(
    db_url: str, lost: int
) -> None:
    """The database ends the transaction's backend (a restart, a failover, an
    administrator) after the work wrote a row and before the commit: PostgreSQL rolled the
    row back, so the work runs again, on a new connection (as often as it is lost, within
    the attempts), and its row lands once."""
    _postgres_only(db_url)
    db = Database(db_url)
    calls: list[int] = []

    async def work(session: AsyncSession) -> str:
        calls.append(1)
        await session.execute(text("INSERT INTO retry_notes VALUES (1)"))
        if len(calls) <= lost:
            await session.execute(_END_MY_BACKEND)
        return "done"

    try:
        await db.transaction(lambda s: s.execute(_NOTES))
        assert await db.transaction(work) == "done"
        assert len(calls) == lost + 1
        assert await _notes(db) == 1
    finally:
        await db.transaction(lambda s: s.execute(text("DROP TABLE retry_notes")))
        await db.dispose()


async def test_a_pooled_connection_left_inside_a_transaction_is_never_written_through(
    db_url: str,
) -> None:
    """A connection that went back to the pool still inside a transaction (its rollback
    cut short: a request cancelled twice) is not lent to a write: BEGIN there would only
    warn, and the write's COMMIT would commit the stale transaction's work with its own.
    It is closed and the work runs on another connection; the stale work never lands."""
    _postgres_only(db_url)
    db = Database(db_url)
    try:
        await db.transaction(lambda s: s.execute(_NOTES))
        async with db.engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            await raw.execute("BEGIN")
            await raw.execute("INSERT INTO retry_notes VALUES (7)")
        # Back in the pool inside that transaction: SQLAlchemy's reset on return sends
        # nothing, as its adapter began none.
        await db.transaction(lambda s: s.execute(text("INSERT INTO retry_notes VALUES (1)")))
        async with db.single_read() as reads:
            found = (await reads.execute(text("SELECT n FROM retry_notes"))).scalars().all()
        assert list(found) == [1]
    finally:
        await db.transaction(lambda s: s.execute(text("DROP TABLE retry_notes")))
        await db.dispose()


async def test_a_connection_lost_during_the_commit_is_not_run_again(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the commit is sent, a lost connection leaves the outcome unknown: the work is
    not run again (it could be done twice); the caller gets the error."""
    _postgres_only(db_url)
    db = Database(db_url)
    calls: list[int] = []
    real = hub.db._commit

    async def end_backend_then_commit(adapter: Any, dialect: Any) -> None:
        if calls:  # the work's transaction (not the table's): its backend ends first
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError):
                await adapter._connection.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        await real(adapter, dialect)

    async def work(session: AsyncSession) -> None:
        calls.append(1)
        await session.execute(text("INSERT INTO retry_notes VALUES (1)"))

    try:
        await db.transaction(lambda s: s.execute(_NOTES))
        monkeypatch.setattr(hub.db, "_commit", end_backend_then_commit)
        with pytest.raises(DBAPIError):
            await db.transaction(work)
        monkeypatch.undo()
        assert len(calls) == 1
    finally:
        await db.transaction(lambda s: s.execute(text("DROP TABLE retry_notes")))
        await db.dispose()


@asynccontextmanager
async def _lost_unseen(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Database, int]]:
    """A Database of one pooled connection whose backend the server ended, too recently
    for the pool to see it (asyncpg made to say it is open); its backend's pid."""
    _postgres_only(db_url)
    db = Database(db_url, pool_size=1, max_overflow=0)
    try:
        async with db.single_read() as reads:
            (mine,) = (await reads.execute(text("SELECT pg_backend_pid()"))).one()
        await _end_backend(db_url, mine)
        monkeypatch.setattr(asyncpg.Connection, "is_closed", lambda self: False)
        yield db, mine
    finally:
        monkeypatch.undo()
        await db.dispose()


async def test_a_read_on_a_connection_lost_a_moment_ago_is_sent_again(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A single read on a connection lost a moment ago is sent again, on a new one."""
    async with _lost_unseen(db_url, monkeypatch) as (db, ended), db.single_read() as reads:
        (now,) = (await reads.execute(text("SELECT pg_backend_pid()"))).one()
    assert now != ended


async def test_a_prepared_read_on_a_connection_lost_a_moment_ago_is_sent_again(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for a Prepared statement read straight through asyncpg (Reads.read: the
    balances read)."""
    pid = Prepared(select(func.pg_backend_pid().label("pid")))
    async with _lost_unseen(db_url, monkeypatch) as (db, ended), db.single_read() as reads:
        (row,) = await reads.read(pid, {})
    assert row["pid"] != ended


async def test_a_read_session_is_never_lent_a_connection_lost_a_moment_ago(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read session's statements are its caller's, which cannot be sent again for it:
    its connection is pinged before it is lent, however recently it was given back."""
    async with _lost_unseen(db_url, monkeypatch) as (db, ended), db.read() as session:
        now = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    assert now != ended


async def _end_backend(db_url: str, pid: int) -> None:
    """The server ends backend `pid`; back once it is gone."""
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute("SELECT pg_terminate_backend($1, 5000)", pid)  # waits for it
    finally:
        await conn.close()


async def test_a_busy_pool_lends_connections_without_a_ping(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection given back moments ago is lent without a round trip (a closed one is
    known without one); one idle for PING_IDLE_SECONDS is pinged first."""
    _postgres_only(db_url)
    pings: list[str] = []
    sent = asyncpg.Connection.execute

    async def counted(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        if query == "SELECT 1":
            pings.append(query)
        return await sent(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "execute", counted)
    db = Database(db_url, pool_size=1, max_overflow=0)
    try:
        for _ in range(3):
            async with db.single_read() as reads:
                await reads.execute(text("SELECT 2"))
        assert pings == []
        monkeypatch.setattr(hub.db, "PING_IDLE_SECONDS", 0.0)
        async with db.single_read() as reads:
            await reads.execute(text("SELECT 2"))
        assert pings == ["SELECT 1"]
    finally:
        await db.dispose()


def test_a_statement_error_is_not_a_lost_connection() -> None:
    """Only a connection that is gone is dropped and its work run again: not a statement
    the server refused, nor an argument asyncpg could not encode."""
    refused = asyncpg.exceptions.UniqueViolationError("duplicate key")
    assert not hub.db.connection_broken(refused)
    assert not hub.db.connection_broken(asyncpg.exceptions.DataError("invalid input for $1"))
    assert hub.db.connection_broken(asyncpg.exceptions.ConnectionDoesNotExistError("gone"))
    assert hub.db.connection_broken(asyncpg.exceptions.AdminShutdownError("terminating"))
    assert hub.db.connection_broken(asyncpg.exceptions.InterfaceError("connection is closed"))
    assert hub.db.connection_broken(ConnectionResetError())
    assert not hub.db.connection_broken(ValueError("not the database's"))


async def _member_with_100_hub(api: Api) -> str:
    """A member of HUB (100 points) and TEA, and a HUB -> TEA rate of 2."""
    await register(api, "haowu", "HUB", category="PLATFORM")
    await register(api, "teahouse", "TEA")
    member = await enroll(api, "HUB", "H-1")
    await enroll(api, "TEA", "T-1", member_id=member)
    assert (await accrue(api, member, "HUB", "100"))["userErrors"] == []
    await set_rate(api, "HUB", "TEA", "2")
    return member


async def test_a_conversion_whose_commit_answer_is_lost_is_answered_once(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database commits a conversion and the connection is lost before its answer
    comes back: the hub cannot know it committed. The conversion claimed its idempotency
    key in that transaction, so it is run again: it finds its key taken and answers the
    conversion made. The member's points moved once."""
    _postgres_only(settings.database_url)
    async with running_app(settings) as api:
        member = await _member_with_100_hub(api)
        real = hub.db._commit
        lost: list[bool] = []

        async def commit_then_lose_the_answer(adapter: Adapted, dialect: Any) -> None:
            await real(adapter, dialect)
            if not lost:
                lost.append(True)
                adapter._connection.terminate()
                gone = asyncpg.exceptions.ConnectionDoesNotExistError(
                    "connection was closed in the middle of operation"
                )
                raise hub.db._translated(gone, adapter, dialect, "COMMIT", []) from gone

        monkeypatch.setattr(hub.db, "_commit", commit_then_lose_the_answer)
        done = await convert(api, member, "HUB", "TEA", 40)
        monkeypatch.undo()
        assert lost == [True]
        assert done["userErrors"] == [] and done["conversion"]["status"] == "COMPLETED", done
        assert await balances(api, member) == {"HUB": 60, "TEA": 80}
        assert await verify_ledger(settings.database_url) == []


def test_a_lost_race_waits_milliseconds_before_it_runs_again() -> None:
    """The wait before a transaction runs again starts at milliseconds and doubles, at most
    half a second: a lost race (two conversions of one member) costs its loser a few
    milliseconds. (tenacity's jitter is a second unless given: every wait was then
    anywhere up to the cap, half a second half of the time.)"""
    for attempt, most in [(1, 0.01), (2, 0.015), (3, 0.025), (4, 0.045), (12, 0.5)]:
        waits = [hub.db._BACKOFF(SimpleNamespace(attempt_number=attempt)) for _ in range(200)]
        assert max(waits) <= most, (attempt, max(waits))
        assert min(waits) >= min(0.005 * 2 ** (attempt - 1), 0.5), (attempt, min(waits))


async def test_a_kept_list_reload_is_read_again_on_a_lost_connection(db_url: str) -> None:
    """What the process keeps (programs, keys, rates) is reloaded in a session of its own;
    a connection lost under the reload reads it again (before: the request that asked
    for the list failed, an authentication's as a bare HTTP 500)."""
    _postgres_only(db_url)
    db = Database(db_url)
    reloads: list[int] = []

    async def reload() -> int:
        reloads.append(1)
        async with db.kept_read() as session:
            if len(reloads) <= 2:
                await session.execute(_END_MY_BACKEND)
            return int((await session.execute(text("SELECT 7"))).scalar_one())

    try:
        assert await hub.db.read_again(reload) == 7
        assert len(reloads) == 3
    finally:
        await db.dispose()


def test_a_lost_connection_waits_longer_than_a_lost_race() -> None:
    """A lost connection is a database restarting or failing over: the waits before a
    transaction's 8 attempts span seconds (50 ms doubling, at most 1 s), not the
    milliseconds a lost race waits."""
    lost = [hub.db._wait(n, LostConnection("gone")) for n in range(1, 8)]
    raced = [hub.db._wait(n, RetryTransaction()) for n in range(1, 8)]
    assert 3.5 <= sum(lost) <= 4.0, lost
    assert lost[0] <= 0.1 and max(lost) <= 1.0, lost
    assert sum(raced) <= 0.7, raced


@pytest.mark.parametrize("gone", ["lost", "full"])
async def test_a_database_lost_past_every_attempt_is_answered_unavailable(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, gone: str
) -> None:
    """Connections lost on every attempt (a database restarting for longer than the
    retries last, backends ended again and again), or none to be had (PostgreSQL's
    max_connections reached): the caller is told the database is unavailable and to
    retry (UNAVAILABLE, not masked in production), not given an INTERNAL error with the
    driver's text (outside attack, stop 45: backends ended every 50 ms)."""
    _postgres_only(settings.database_url)
    async with running_app(settings) as api:
        member = await _member_with_100_hub(api)
        failure = (
            asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle")
            if gone == "lost"
            else asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already")
        )

        async def fails(*_: Any, **__: Any) -> Any:
            raise failure

        monkeypatch.setattr(hub.db, "PING_IDLE_SECONDS", 0.0)
        monkeypatch.setattr(asyncpg.Connection, "fetch", fails)
        monkeypatch.setattr(asyncpg.Connection, "fetchrow", fails)
        monkeypatch.setattr(hub.db, "_wait", lambda *_: 0.0)
        monkeypatch.setattr(hub.db, "_wait_after", lambda *_: 0.0)
        asked = {"memberId": member, "from": "HUB", "to": "TEA", "points": 40}
        for document, variables, field in [
            (BALANCES, {"id": member}, "member"),
            (CONVERT, {"input": asked | {"idempotencyKey": "k-1"}}, "convertPoints"),
        ]:
            answer = (await api.post(document, variables)).json()
            (error,) = answer["errors"]
            assert error["path"] == [field], answer  # the field's own error, not the 503's
            assert error["extensions"]["code"] == "UNAVAILABLE", answer
            assert "retry" in error["message"].lower(), answer
            assert "SELECT" not in error["message"], answer
        monkeypatch.undo()
        assert await balances(api, member) == {"HUB": 100, "TEA": 0}  # nothing moved
        assert await verify_ledger(settings.database_url) == []
