"""The database: engines for SQLite and PostgreSQL, sessions, and retried transactions."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import functools
import json
import sqlite3
import time
import types
import typing
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Hashable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from contextvars import ContextVar
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

import structlog
from sqlalchemy import (
    BigInteger,
    DateTime,
    Insert,
    Numeric,
    Table,
    Text,
    bindparam,
    cast,
    event,
    func,
    insert,
    literal,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, Connection, Dialect, Engine, Result, create_engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import (
    ColumnProperty,
    Session,
    configure_mappers,
    make_transient_to_detached,
)
from sqlalchemy.orm.attributes import instance_state, set_committed_value
from sqlalchemy.orm.base import NO_VALUE
from sqlalchemy.sql.base import Executable
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import await_only
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from hub.config import Settings
from hub.errors import DomainError, LostConnection, RetryTransaction

T = TypeVar("T")
M = TypeVar("M")
K = TypeVar("K", bound=Hashable)
log = structlog.get_logger(__name__)

# SQLSTATEs after which PostgreSQL asks the client to run the transaction again.
_RETRYABLE_SQLSTATES = {"40001", "40P01"}
# Row locks are FOR NO KEY UPDATE (`with_for_update(key_share=True)`, or this for the
# ORM's session.get): they serialize writers of the row as FOR UPDATE does, but do not
# block the key-share lock a row inserted elsewhere takes on the row it refers to (an
# accrual's entry naming the member a conversion holds): with FOR UPDATE, two such
# transactions each waited for the other (outside attack helper-86: deadlocks). No lock
# here deletes its row or changes its key.
NO_KEY_UPDATE: dict[str, Any] = {"key_share": True}


class JSONText(TypeDecorator[Any]):
    """A JSON value (a list of program codes, a failure's code and message) that Python
    reads and writes as the value, kept in a TEXT column: the columns were TEXT from their
    first migration, and a native JSON type would rewrite each table on SQLite (and has no
    equality on PostgreSQL) for no gain, since the hub never queries inside them."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


class ExactDecimal(TypeDecorator[Decimal]):
    """A Decimal stored exactly: NUMERIC(p, s) on PostgreSQL, a scaled BIGINT on SQLite.

    SQLite has no decimal type and SQLAlchemy would pass through float there; a
    scaled integer keeps sums in SQL exact on both databases.
    """

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int = 18, scale: int = 4) -> None:
        super().__init__(precision, scale)
        self.precision = precision
        self.scale = scale
        self._quantum = Decimal(1).scaleb(-scale)

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        exact = Decimal(value).quantize(self._quantum, rounding=ROUND_HALF_UP)
        if dialect.name == "sqlite":
            return int(exact.scaleb(self.scale))
        return exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-self.scale)
        return Decimal(value)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware UTC datetime: timestamptz on PostgreSQL, naive UTC text on SQLite."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        return dialect.type_descriptor(DateTime(timezone=dialect.name != "sqlite"))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware UTC datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        moment: dt.datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC)


async def rows_by(
    session: AsyncSession,
    model: type[M],
    column: Any,
    keys: Sequence[K],
    *order: Any,
) -> dict[K, list[M]]:
    """Rows of `model` whose `column` is one of `keys`, grouped by it (every key present):
    the one query behind each DataLoader that loads a list per key."""
    found: dict[K, list[M]] = {key: [] for key in keys}
    rows = await session.scalars(select(model).where(column.in_(keys)).order_by(*order))
    for row in rows:
        found[getattr(row, column.key)].append(row)
    return found


async def row_by(
    session: AsyncSession, model: type[M], column: Any, keys: Sequence[K]
) -> dict[K, M]:
    """The row of `model` whose unique `column` is each of `keys` (absent keys are left out):
    the one query behind each DataLoader that loads a row per key."""
    rows = await session.scalars(select(model).where(column.in_(keys)))
    return {getattr(row, column.key): row for row in rows}


KEPT = "kept"  # on a session's info: the process's hub.caches.Caches, when it has one


def insert_or_skip(session: AsyncSession | str, model: type[Any]) -> Any:
    """An INSERT into `model`'s table that does nothing where a unique key already holds the
    row (ON CONFLICT DO NOTHING, in the session's dialect or the dialect named); its rowcount
    says whether it wrote. A Core statement: the ORM's bulk INSERT would cost a third more
    and give nothing here (no instance is made)."""
    return _dialect_insert(session, model).on_conflict_do_nothing()


def insert_or_update(session: AsyncSession, model: type[Any], updated: Sequence[str]) -> Any:
    """An INSERT into `model`'s table that, where the row's primary key is already held,
    sets the `updated` columns of that row from the one given instead (ON CONFLICT DO
    UPDATE): one statement, however many rows, and none read first."""
    statement = _dialect_insert(session, model)
    return statement.on_conflict_do_update(
        index_elements=list(statement.table.primary_key.columns),
        set_={column: statement.excluded[column] for column in updated},
    )


def _dialect_insert(session: AsyncSession | str, model: type[Any]) -> Any:
    """The INSERT of the session's dialect (or the dialect named) into `model`'s table, the
    one with ON CONFLICT clauses."""
    dialect = session if isinstance(session, str) else session.get_bind().dialect.name
    table = sa_inspect(model).local_table
    assert isinstance(table, Table)
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)


APPENDED = "appended"  # on a write session's info: rows to insert as it commits (append)
LAST = "last"  # on a write session's info: work that runs just before its commit (last)

# More rows than this are not sent as one statement (its shape would be one of too many);
# nor more rows of one table than _AT_ONCE_ROWS_OF_A_TABLE (a bulk job's, an executemany).
_AT_ONCE_ROWS = 8
_AT_ONCE_ROWS_OF_A_TABLE = 4

# Each appended table as one statement takes: the table, the columns its rows name, and
# how many rows it has.
Shape = tuple[tuple[Table, tuple[str, ...], int], ...]


async def append(session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` into `table` as the write transaction commits (Database.write), after
    the ORM's rows, each table's rows in the order appended: on PostgreSQL a few rows of
    several tables are one statement (an INSERT per table, as CTEs), and the tables given
    many rows an INSERT each (an executemany); on SQLite an INSERT per table. So an
    appended row may refer to the ORM's rows and to an appended row of a table given one
    row. For rows nothing in the transaction reads back (an obligation, an outbox event, a
    conversion's row once its local steps ran); in a session that is not
    Database.write's they are inserted at once. The rows of a table name the same
    columns."""
    if not rows:
        return
    pending: list[tuple[Table, Sequence[Mapping[str, Any]]]] | None = session.info.get(APPENDED)
    if pending is None:
        await _insert_now(session, table, rows)
    else:
        pending.append((table, rows))


async def write_pending(session: AsyncSession) -> None:
    """Write now what the transaction would write as it commits: the ORM's changes and the
    rows appended so far (later ones are still appended). Before a statement that locks a
    row every transaction of its kind contends for (a reward's stock), so that the row
    stays locked for the commit alone, not for the writes that could come first. Where
    writes are deferred (defer) that statement is deferred too, and goes with them all in
    the transaction's last statement: nothing is written here."""
    if defers(session):
        return
    await session.flush()
    if session.info.get(APPENDED):
        await _insert_appended(session)
        session.info[APPENDED] = []


async def last(session: AsyncSession, work: Callable[[], Awaitable[None]]) -> None:
    """Run `work` as the write transaction's last statements, after its appended rows, just
    before its commit (Database.write), in the order given: for an update nothing in the
    transaction waits on, of a row every transaction of its kind contends for (stock given
    back), which then stays locked for the commit alone. In a session that is not
    Database.write's it runs at once."""
    pending: list[Callable[[], Awaitable[None]]] | None = session.info.get(LAST)
    if pending is None:
        await work()
    else:
        pending.append(work)


DEFERRED = "deferred"  # on a PostgreSQL write session's info: its _Deferred writes
# On a session's info: what to do with a refusal (DomainError) a deferred write's `done`
# raises as it is sent, later than the work that deferred it (idempotency keeps it under
# the request's key, as a refusal the work raised itself).
LATE_REFUSAL = "late_refusal"


class StatementPart(typing.Protocol, Hashable):
    """The SQL of a deferred write (`defer`), built once per process for each place it takes
    in a statement: hashable, so that a statement of the same parts is built once."""

    def build(self, prefix: str) -> tuple[list[Any], list[Any]]:
        """Its CTEs and its result columns, each name (CTEs', parameters', columns')
        starting with `prefix`."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class Deferred:
    """A write sent with the transaction's next statement: its SQL, its parameters (named
    without the prefix), the rows it updates (table, key), and what to do with its result
    columns (named without the prefix) once it ran; `entries`: an entry's, so that a
    unique key of the entries found taken means a concurrent twin (RetryTransaction)."""

    part: StatementPart
    params: Mapping[str, Any]
    rows: frozenset[tuple[str, Any]] = frozenset()
    done: Callable[[Mapping[str, Any]], None] | None = None
    entries: bool = False


class _Deferred:
    """A write session's deferred writes, in order, and the rows they update."""

    def __init__(self) -> None:
        self.writes: list[Deferred] = []
        self.rows: set[tuple[str, Any]] = set()

    def take(self) -> list[Deferred]:
        writes, self.writes = self.writes, []
        self.rows = set()
        return writes


async def defer(session: AsyncSession, write: Deferred) -> None:
    """Send `write` with the transaction's next statement, in one round trip with it: on
    PostgreSQL a write transaction's writes nothing reads back before the commit (an
    entry, a row's UPDATE, a stock's) go with its appended rows as it commits (data-
    modifying CTEs of one statement), or with whatever it sends first (a read waits for
    none of them: they are sent first, in one statement of their own). Two writes of one row
    are never in one statement (PostgreSQL would make one of them): the first ones go
    first. Anywhere else the write is sent now. What its `done` raises (a refusal the
    write found) is raised by whichever statement sends it, and fails the transaction."""
    pending: _Deferred | None = session.info.get(DEFERRED)
    if pending is None:
        await _send_deferred(session, [write])
        return
    if pending.rows & write.rows:
        await _send_deferred(session, pending.take())
    pending.writes.append(write)
    pending.rows |= write.rows


def defers(session: AsyncSession) -> bool:
    """Whether the session's writes may be deferred (`defer` sends them later)."""
    return DEFERRED in session.info


async def send_deferred(session: AsyncSession) -> None:
    """Send the session's deferred writes now (before any other statement: it may read
    what they write, or refer to it)."""
    pending: _Deferred | None = session.info.get(DEFERRED)
    if pending is not None and pending.writes:
        await _send_deferred(session, pending.take())


async def _send_deferred(
    session: AsyncSession,
    writes: Sequence[Deferred],
    shape: Shape = (),
    appended: Mapping[str, Any] | None = None,
) -> None:
    """One statement of `writes` and the appended rows of `shape` (their parameters in
    `appended`); then each write's `done` with its columns."""
    statement = _deferred_at_once(tuple(w.part for w in writes), shape)
    params = dict(appended or {})
    for k, write in enumerate(writes):
        params.update({f"p{k}_{name}": value for name, value in write.params.items()})
    try:
        row = await statement.row(session, params)
    except IntegrityError as error:
        if any(w.entries for w in writes) and _violated_table(error) == "entries":
            raise RetryTransaction() from error  # a concurrent twin: run again to see it
        raise
    assert row is not None  # one row whatever happened
    for k, write in enumerate(writes):
        if write.done is not None:
            prefix = f"p{k}_"
            try:
                write.done({n[len(prefix) :]: v for n, v in row.items() if n.startswith(prefix)})
            except DomainError as refusal:
                late: Callable[[DomainError], None] | None = session.info.get(LATE_REFUSAL)
                if late is not None:
                    late(refusal)
                raise


def _violated_table(error: IntegrityError) -> str | None:
    """The table whose constraint the statement violated, as PostgreSQL names it."""
    cause = error.orig.__cause__ if error.orig is not None else None
    return getattr(cause, "table_name", None)


@functools.lru_cache(maxsize=256)
def _deferred_at_once(parts: tuple[StatementPart, ...], shape: Shape) -> Prepared:
    """The deferred writes' CTEs (part k's names prefixed p{k}_), then an INSERT per
    appended table, all CTEs of a SELECT of the writes' result columns (one row; PostgreSQL
    runs an unreferenced data-modifying CTE all the same), built once per shape. A table
    given one row inserts VALUES; one given several, its rows' SELECTs joined by UNION ALL,
    in order (a multi-row VALUES is compiled anew on every call: SQLAlchemy does not cache
    it)."""
    ctes: list[Any] = []
    columns: list[Any] = []
    for k, part in enumerate(parts):
        built, given = part.build(f"p{k}_")
        ctes.extend(built)
        columns.extend(given)
    ctes.extend(
        _insert_rows(i, table, names, count).cte(f"appended_{i}")
        for i, (table, names, count) in enumerate(shape)
    )
    statement = select(*columns) if columns else select(literal(1).label("one"))
    return Prepared(statement.add_cte(*ctes), sends_deferred=False)


_ID_BLOCKS = "id_blocks"  # on a PostgreSQL write session's info: ids drawn ahead (next_id)
_ID_BLOCK = 32  # ids drawn at once


async def next_id(session: AsyncSession, table: Table) -> int:
    """The next value of the sequence of `table`'s `id` (PostgreSQL), for a row written
    later (defer) whose id is needed now: drawn from a block of them this process drew
    ahead, one round trip every _ID_BLOCK ids. Ids are then not given in the order rows
    are written, which no sequence promises anyway (nothing here orders by them)."""
    blocks: dict[str, collections.deque[int]] = session.info.setdefault(_ID_BLOCKS, {})
    block = blocks.setdefault(table.name, collections.deque())
    if not block:
        drawn = await _draw_ids(table.name).all(session, {})
        block.extend(sorted(int(row["id"]) for row in drawn))
    return block.popleft()


@functools.cache
def _draw_ids(table: str) -> Prepared:
    sequence = func.pg_get_serial_sequence(literal(table), literal("id"))
    return Prepared(
        select(func.nextval(sequence).label("id")).select_from(func.generate_series(1, _ID_BLOCK)),
        sends_deferred=False,  # (a sequence's value is no row a deferred write writes)
    )


async def _insert_now(
    session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """One INSERT of `rows`: an executemany for several, a single row as itself."""
    await session.execute(_insert_into(table), list(rows) if len(rows) > 1 else rows[0])


async def _insert_appended(session: AsyncSession) -> None:
    """The appended rows, and the deferred writes with them (one statement, as the
    transaction commits: they are its last writes)."""
    appended: list[tuple[Table, Sequence[Mapping[str, Any]]]] = session.info.pop(APPENDED, [])
    await session.flush()  # the ORM's rows first: an appended row may refer to one
    pending: _Deferred | None = session.info.get(DEFERRED)
    writes = pending.take() if pending is not None else []
    grouped: dict[Table, list[Mapping[str, Any]]] = {}
    for table, rows in appended:
        grouped.setdefault(table, []).extend(rows)
    few = {t: rows for t, rows in grouped.items() if len(rows) <= _AT_ONCE_ROWS_OF_A_TABLE}
    at_once = sum(len(rows) for rows in few.values())
    # One statement for the few rows with the deferred writes; a lone row without any is
    # an INSERT of its own below.
    if (
        session.get_bind().dialect.name == "postgresql"
        and at_once <= _AT_ONCE_ROWS
        and (writes or at_once > 1)
    ):
        shape: Shape = tuple((t, tuple(rows[0]), len(rows)) for t, rows in few.items())
        params = {
            f"a{i}_{n}_{column}": row[column]
            for i, rows in enumerate(few.values())
            for n, row in enumerate(rows)
            for column in shape[i][1]
        }
        await _send_deferred(session, writes, shape, params)
        grouped = {t: rows for t, rows in grouped.items() if t not in few}
    elif writes:
        await _send_deferred(session, writes)
    # The tables given one row first: a row of a table given several may refer to one.
    for table, rows in sorted(grouped.items(), key=lambda item: len(item[1]) > 1):
        await _insert_now(session, table, rows)


@functools.cache
def _insert_into(table: Table) -> Insert:
    return insert(table)


def _insert_rows(i: int, table: Table, columns: tuple[str, ...], count: int) -> Insert:
    """The INSERT of appended table `i`'s `count` rows, their values named a{i}_{row}_{column}."""

    def value(n: int, column: str) -> Any:
        return bindparam(f"a{i}_{n}_{column}", type_=table.c[column].type)

    if count == 1:
        return insert(table).values({c: value(0, c) for c in columns})
    rows = [
        # Cast: a parameter in a SELECT has no type of its own for the column to take.
        select(*(cast(value(n, c), table.c[c].type) for c in columns))
        for n in range(count)
    ]
    return insert(table).from_select(list(columns), union_all(*rows))


def utcnow() -> dt.datetime:
    """Now, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


# A lost race's wait: 5 ms doubling, at most half a second, each with up to 5 ms of
# jitter (tenacity's own jitter is a second, which made most waits the cap).
_BACKOFF = wait_exponential_jitter(multiplier=0.005, max=0.5, jitter=0.005)
# A lost connection's: 50 ms doubling, at most a second (the 7 waits of a transaction's
# 8 attempts span about 3.5 s: a database restarting has that long to come back).
_RECONNECT = wait_exponential_jitter(multiplier=0.05, max=1.0, jitter=0.05)


def _wait(attempt_number: int, error: BaseException | None) -> float:
    """How long to wait before attempt `attempt_number + 1`, after `error`."""
    state = typing.cast(RetryCallState, types.SimpleNamespace(attempt_number=attempt_number))
    lost = isinstance(error, LostConnection) or (error is not None and connection_broken(error))
    return (_RECONNECT if lost else _BACKOFF)(state)


def _wait_after(state: RetryCallState) -> float:
    """tenacity's wait: by the attempt that failed (the first ran before tenacity's)."""
    error = state.outcome.exception() if state.outcome is not None else None
    return _wait(state.attempt_number + 1, error)


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, RetryTransaction):
        return True
    if isinstance(exc, DBAPIError):
        orig = exc.orig
        state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if state in _RETRYABLE_SQLSTATES:
            return True
        if isinstance(orig, sqlite3.OperationalError) or "database is locked" in str(orig):
            return "locked" in str(orig) or "busy" in str(orig)
    return False


# SQLSTATE classes and codes of a connection that is gone: 08 (connection exception),
# 57P01 to 57P03 (the server shutting down, crashed, or not accepting connections yet).
_GONE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def connection_broken(exc: BaseException) -> bool:
    """Whether `exc` says the database connection itself is gone or unusable (its
    backend ended, its socket closed, its protocol left mid-operation), rather than a
    statement failing: asyncpg's interface and client errors (but an argument it could
    not encode), a connection SQLSTATE, an error of the socket (reset, broken pipe).
    SQLAlchemy's errors are looked through to the driver's."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return False
        if isinstance(seen, DBAPIError):
            if seen.connection_invalidated:
                return True
            seen = seen.orig
            continue
        module = type(seen).__module__
        if module.startswith("asyncpg"):
            state = getattr(seen, "sqlstate", None)
            if state is not None:
                return str(state).startswith(_GONE_SQLSTATES)
            # InterfaceError, InternalClientError: the connection's; DataError (a ValueError
            # too): an argument asyncpg could not encode, the statement's.
            return not isinstance(seen, ValueError)
        if isinstance(seen, ConnectionError):  # reset, refused, broken pipe
            return True
        seen = seen.__cause__
    return False


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database could not be used at all, rather than a statement
    failing: its connections lost (connection_broken; a LostConnection is one that outlived
    the retries), or none to be had (the pool's timeout; PostgreSQL's connection limit and
    other exhausted resources, SQLSTATE class 53)."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return False
        if isinstance(seen, (LostConnection, SATimeoutError)) or connection_broken(seen):
            return True
        if str(getattr(seen, "sqlstate", "") or "").startswith("53"):
            return True
        seen = seen.orig if isinstance(seen, DBAPIError) else seen.__cause__
    return False


READ_ATTEMPTS = 3  # a read sent on connections lost under it, at most
COMMITTING = "committing"  # on Database.write's progress: the commit was sent
# On a write session's info, and then its progress: the transaction claimed a caller's
# idempotency key, so running it again after an unknown commit cannot do its work twice
# (the key is then found taken, and its stored result answered).
KEYED = "keyed"
HELD = "held"  # on a write session's info: the first rows it loaded (_WriteSession)
_HELD_MAX = 64


class _WriteSession(Session):
    """A write transaction's session. SQLAlchemy's identity map holds rows weakly, so a row
    the code let go of is read again the next time a step asks for it by key (the member a
    redemption locked, read again by each of its steps; the redemption it made, read back
    once the garbage collector had run): the first `_HELD_MAX` rows a write transaction
    loads or inserts stay referenced until it ends (a bulk job's are not all held)."""


_WRITE_DRIVER = "write_driver"  # on a PostgreSQL write session's info: its asyncpg adapter


async def _before_commit(session: AsyncSession, progress: dict[str, bool] | None) -> None:
    """What a write transaction does as it commits: its appended rows, then its last work,
    then what the ORM still holds unwritten; then it tells `progress` that the commit is
    under way, and whether a key was claimed."""
    await _insert_appended(session)
    for work in session.info.pop(LAST):
        await work()
    await send_deferred(session)  # what the last work deferred
    await session.flush()
    if progress is not None:
        progress[COMMITTING] = True
        progress[KEYED] = bool(session.info.get(KEYED))


async def _begin(adapter: Any, dialect: Dialect) -> None:
    """BEGIN on the adapter's asyncpg connection, as the adapter would on its first
    statement (it then holds the transaction, and begins none of its own)."""
    try:
        await adapter._start_transaction()
    except Exception as error:
        # A connection asyncpg will not begin on (one left inside a transaction: asyncpg
        # refuses, and never commits that one's work with ours) is closed too, so that
        # the work runs again on another instead of finding this one each time.
        raise _lost_or_failed(error, adapter, dialect, "BEGIN") from error


async def _commit(adapter: Any, dialect: Dialect) -> None:
    """COMMIT the adapter's transaction on asyncpg itself (the adapter then holds none: a
    rollback on the connection's return to the pool sends nothing)."""
    transaction, adapter._transaction = adapter._transaction, None
    if transaction is None:
        return
    try:
        await transaction.commit()
    except Exception as error:
        raise _lost_or_failed(error, adapter, dialect, "COMMIT") from error


def _lost_or_failed(
    error: Exception, adapter: Any, dialect: Dialect, sql: str, args: list[Any] | None = None
) -> Exception:
    """asyncpg's error as SQLAlchemy would raise it; a connection it says is gone or
    unusable is closed first (the pool then drops it: is_disconnect), and the loss noted
    (_Losses)."""
    if connection_broken(error):
        _Losses.note()
        adapter._connection.terminate()
    return _translated(error, adapter, dialect, sql, args or [])


async def _rollback(adapter: Any) -> None:
    """ROLLBACK the adapter's transaction, if it still holds one; a connection that cannot
    is closed (the pool then replaces it): nothing it began is left open."""
    transaction, adapter._transaction = adapter._transaction, None
    if transaction is None or adapter._connection.is_closed():
        return
    try:
        await transaction.rollback()
    except Exception:
        adapter._connection.terminate()


class _WriteAsyncSession(AsyncSession):
    """A write transaction's async session: a flush with nothing to write returns at once
    (the sync session's would return too, but only after a greenlet was started to run it:
    a few of those each write transaction)."""

    async def flush(self, objects: Sequence[Any] | None = None) -> None:
        if objects is None and self.sync_session._is_clean():
            return
        await send_deferred(self)  # what the ORM writes may refer to a deferred write's rows
        await super().flush(objects)

    # Every statement the ORM sends goes after the deferred writes (defer), which it may
    # read or refer to.
    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        await send_deferred(self)
        return await super().execute(*args, **kwargs)

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        await send_deferred(self)
        return await super().scalar(*args, **kwargs)

    async def scalars(self, *args: Any, **kwargs: Any) -> Any:
        await send_deferred(self)
        return await super().scalars(*args, **kwargs)

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        await send_deferred(self)
        return await super().get(*args, **kwargs)

    async def get_one(self, *args: Any, **kwargs: Any) -> Any:
        await send_deferred(self)
        return await super().get_one(*args, **kwargs)

    async def refresh(self, *args: Any, **kwargs: Any) -> None:
        await send_deferred(self)
        await super().refresh(*args, **kwargs)

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        await send_deferred(self)
        return await super().stream(*args, **kwargs)

    async def stream_scalars(self, *args: Any, **kwargs: Any) -> Any:
        await send_deferred(self)
        return await super().stream_scalars(*args, **kwargs)

    async def run_sync(self, *args: Any, **kwargs: Any) -> Any:
        await send_deferred(self)
        return await super().run_sync(*args, **kwargs)

    async def connection(self, *args: Any, **kwargs: Any) -> Any:
        await send_deferred(self)  # (its user may send anything on it)
        return await super().connection(*args, **kwargs)


@event.listens_for(_WriteSession, "loaded_as_persistent")
@event.listens_for(_WriteSession, "pending_to_persistent")
def _hold(session: Session, instance: object) -> None:
    held: list[object] = session.info.setdefault(HELD, [])
    if len(held) < _HELD_MAX:
        held.append(instance)


class Reads:
    """Statements run one at a time, each outside any transaction (Database.single_read)."""

    dialect = "sqlite"

    async def read(
        self, statement: Prepared, parameters: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """A Prepared statement's rows, each by column name (on PostgreSQL straight through
        asyncpg)."""
        return [dict(row._mapping) for row in await self.execute(statement.statement, parameters)]

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Result[*tuple[Any, ...]]:
        raise NotImplementedError


class _AsyncReads(Reads):
    def __init__(self, conn: AsyncConnection, driver: Any = None) -> None:
        """`driver`: the connection's asyncpg adapter, when the caller holds it (a lane's)."""
        self._conn = conn
        self._driver = driver
        self.dialect = conn.dialect.name

    async def read(
        self, statement: Prepared, parameters: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        return await read_again(
            lambda: statement.read(self._conn, parameters, self._driver), reset=self._reconnect
        )

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Result[*tuple[Any, ...]]:
        # A connection lost under the read (its backend ended a moment before it was lent,
        # too recently for the pool to see, or while the read ran): sent again, on a new
        # connection.
        return await read_again(
            lambda: self._conn.execute(statement, parameters), reset=self._reconnect
        )

    async def _reconnect(self) -> None:
        self._driver = None  # the connection's next one is another's
        await self._conn.invalidate()
        await self._conn.rollback()


async def read_again(
    load: Callable[[], Awaitable[T]], *, reset: Callable[[], Awaitable[None]] | None = None
) -> T:
    """`load` (a read: a statement, or a session of its own that it opens and closes), run
    again when the connection is lost under it, up to READ_ATTEMPTS times; `reset` first
    makes the connection a new one, where `load` keeps one."""
    for sent in range(1, READ_ATTEMPTS + 1):
        try:
            return await load()
        except DBAPIError as error:
            if sent == READ_ATTEMPTS or not connection_broken(error):
                raise
            _Losses.note()
            lost = error
        if reset is not None:
            await reset()
        await asyncio.sleep(_wait(sent, lost))
    raise AssertionError("unreachable")  # pragma: no cover


class _LoopReads(Reads):
    """Reads on the event loop's own thread (SQLite files): a hot path's indexed read takes
    SQLite about 50 us, and handing it to aiosqlite's thread and back cost 0.4 ms of CPU
    (each of execute, fetch and rollback is a hop), ten times the read itself."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Result[*tuple[Any, ...]]:
        return self._conn.execute(statement, parameters)


# A pooled connection idle this long is pinged before it is lent: a proxy or a firewall
# that drops idle connections says nothing to the connection's socket.
PING_IDLE_SECONDS = 10.0
_RETURNED_AT = "returned_at"  # on a pooled connection's record: when it came back
# Set while a caller that recovers from a lost connection holds one (a single read, a
# write transaction): only such a caller gets a connection without a ping.
_RECOVERS: ContextVar[bool] = ContextVar("hub_db_recovers", default=False)


class _Losses:
    """When this process last found a database connection lost: a connection given back
    before then may have been lost with it (a restart ends them all), so it is pinged
    before it is lent again, however recently it was used."""

    last = 0.0

    @classmethod
    def note(cls) -> None:
        cls.last = time.monotonic()


@contextlib.contextmanager
def _recovering() -> Iterator[None]:
    token = _RECOVERS.set(True)
    try:
        yield
    finally:
        _RECOVERS.reset(token)


def _moments_ago(returned_at: float) -> bool:
    """Whether a connection given back at `returned_at` may be lent without a ping: since
    the process last found a connection lost, and less than PING_IDLE_SECONDS ago."""
    return returned_at > _Losses.last and time.monotonic() - returned_at < PING_IDLE_SECONDS


def _ping_on_checkout(engine: AsyncEngine) -> None:
    """A request never gets a dead pooled connection (tests/test_hot_paths.py). A database
    that restarts or ends a backend closes the connection's socket, which the event loop
    sees while the connection sits in the pool: asyncpg then knows it closed, without a
    round trip. A connection given back moments ago, and since the process last found a
    connection lost (_Losses), is lent as it is to a caller that recovers from a lost
    connection (a single read sends its statement again, a write transaction runs again:
    `_recovering`): on a busy pool, a round trip of every hot request saved. Any other is
    pinged first, one round trip (SQLAlchemy's own ping for asyncpg sends three: its `;`
    in a BEGIN and a ROLLBACK): one idle PING_IDLE_SECONDS or more (a proxy may have
    dropped it without a word), one given back before the last loss, one lent to a read
    session (its caller's statements cannot be sent again for it). A dead connection found
    either way is replaced (DisconnectionError: the pool connects afresh)."""

    @event.listens_for(engine.sync_engine, "handle_error")
    def _gone(context: Any) -> None:
        # asyncpg's own test (is the socket closed?) misses a backend ended mid-operation:
        # the connection is dropped from the pool all the same.
        if context.is_disconnect or connection_broken(context.original_exception):
            context.is_disconnect = True
            _Losses.note()

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _returned(_dbapi: Any, record: Any) -> None:
        if record is not None:
            record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _check(dbapi: Any, record: Any, _proxy: Any) -> None:
        driver = dbapi.driver_connection
        if driver.is_closed():
            raise DisconnectionError("a pooled connection was closed by the database")
        if driver.is_in_transaction():  # its rollback cut short: closed, which ends that one
            raise DisconnectionError("a pooled connection was left inside a transaction")
        returned = record.info.get(_RETURNED_AT)
        if returned is None:
            return  # just connected
        if _moments_ago(returned) and _RECOVERS.get():
            return  # given back moments ago, since the last loss, to a caller that recovers
        try:
            await_only(driver.execute("SELECT 1"))
        except Exception as error:  # whatever the driver raises for a dead connection
            raise DisconnectionError(f"a pooled connection did not answer: {error}") from error


# A lane unused this long goes back to the pool (Database.shed_idle_lanes).
LANE_IDLE_SECONDS = 60.0


@dataclasses.dataclass(eq=False)
class _Lane:
    """A pooled connection a process keeps checked out (_Lanes), and its asyncpg adapter."""

    conn: AsyncConnection
    adapter: Any
    returned_at: float = 0.0


def _unusable(lane: _Lane) -> bool:
    """Whether a lane's connection is known to be of no use, without a round trip: no
    longer the lane's (a read found it lost and went on on another), closed by the
    database, or left inside a transaction (its rollback cut short)."""
    if lane.conn.invalidated:
        return True
    adapter: Any = lane.adapter
    sync: Any = lane.conn.sync_connection
    fairy = sync._dbapi_connection if sync is not None else None
    if fairy is None or fairy.dbapi_connection is not adapter:
        return True
    driver = adapter._connection
    return driver is None or driver.is_closed() or driver.is_in_transaction()


class _Lanes:
    """Pooled connections that stay checked out of the pool between the write transactions
    (or the single reads) they carry on PostgreSQL: lending one is a list's pop, where
    SQLAlchemy's checkout and checkin of a connection are a greenlet each and a task for
    the close (about 280 us of CPU each time on the bench's machine, bench/README.md "stop
    45"). At most `most` of them, so that the pool keeps room for every other use; work
    that finds every lane lent takes a connection of the pool, as before.

    A lane is checked as the pool checks a connection it lends (`_ping_on_checkout`): one
    whose socket the database closed is dropped; one lent back before the last loss the
    process saw, or idle PING_IDLE_SECONDS or more, is pinged first (its callers recover
    from a connection lost under them, so one given back moments ago goes as it is)."""

    def __init__(
        self, engine: AsyncEngine, most: int, make_room: Callable[[], Awaitable[None]]
    ) -> None:
        """`make_room`: awaited before a connection is taken from the pool past the lanes
        (Database._room: every idle lane back to a pool that has no connection left)."""
        self._engine = engine
        self._most = most
        self._make_room = make_room
        self._idle: list[_Lane] = []
        self._open = 0
        self._closed = False

    @asynccontextmanager
    async def lent(self) -> AsyncIterator[tuple[AsyncConnection, Any]]:
        """A connection with no transaction open, and its asyncpg adapter, for the block."""
        lane = await self._take()
        if lane is None:  # every lane lent: a connection of the pool, as before
            await self._make_room()
            async with self._engine.connect() as conn:
                yield conn, (await conn.get_raw_connection()).dbapi_connection
            return
        try:
            yield lane.conn, lane.adapter
        finally:
            await self._give_back(lane)

    async def _take(self) -> _Lane | None:
        while self._idle:
            lane = self._idle.pop()  # the one lent back last: its connection is warm
            if await self._usable(lane):
                return lane
            await self._drop(lane, dead=True)
        if self._closed or self._open >= self._most:
            return None
        self._open += 1
        try:
            conn = await self._engine.connect()
            adapter = (await conn.get_raw_connection()).dbapi_connection
        except BaseException:
            self._open -= 1
            raise
        return _Lane(conn, adapter)

    @staticmethod
    async def _usable(lane: _Lane) -> bool:
        if _unusable(lane):
            return False
        driver = lane.adapter._connection
        if _moments_ago(lane.returned_at):
            return True
        try:
            await driver.execute("SELECT 1")
        except Exception:  # whatever the driver raises for a dead connection
            _Losses.note()
            return False
        return True

    async def _give_back(self, lane: _Lane) -> None:
        if self._closed or _unusable(lane) or lane.adapter._transaction is not None:
            # (one left inside a transaction, its rollback cut short, is closed: that
            # transaction ends with it, and nothing is ever written through it)
            await self._drop(lane)
            return
        if lane.conn.in_transaction():  # a Core statement's (autocommit: nothing is sent)
            try:
                await lane.conn.rollback()
            except Exception:
                await self._drop(lane)
                return
        lane.returned_at = time.monotonic()
        self._idle.append(lane)

    async def _drop(self, lane: _Lane, *, dead: bool = False) -> None:
        """Back to the pool, no longer a lane; a connection found dead (`dead`: its ping
        failed), or left inside a transaction, is closed (invalidated: the pool then
        forgets it)."""
        self._open -= 1
        with contextlib.suppress(Exception):
            if dead or _unusable(lane):
                await lane.conn.invalidate()
            await lane.conn.close()

    async def shed(self, idle_seconds: float = 0.0) -> int:
        """Idle lanes unused for `idle_seconds` (every idle one by default) back to the
        pool, which keeps at most its size of them open; how many. Lanes are made again as
        work needs them."""
        now = time.monotonic()
        old = [lane for lane in self._idle if now - lane.returned_at >= idle_seconds]
        self._idle = [lane for lane in self._idle if lane not in old]
        for lane in old:
            await self._drop(lane)
        return len(old)

    async def close(self) -> None:
        """Every idle lane back to the pool; a lane lent meanwhile goes back when its
        work ends."""
        self._closed = True
        await self.shed()


class Database:
    """One per process: the engine, read and write sessions, and retried transactions."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int = 20,
        pool_timeout: float = 30.0,
    ) -> None:
        self.url = make_url(url)
        pool = {"pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": pool_timeout}
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        # SQLite files: single reads run on the loop's thread, through an engine of their
        # own that never begins a transaction (so none is rolled back either).
        self._loop_engine: Engine | None = None
        self._loop_read_open = False
        if self.is_sqlite:
            self.engine: AsyncEngine = create_async_engine(
                self.url,
                connect_args={"timeout": 30},
                **pool,
                hide_parameters=True,  # an error's text never carries a member's name or phone
            )
            _configure_sqlite(self.engine)
            if _is_file(self.url):
                self._loop_engine = create_engine(
                    self.url.set(drivername="sqlite+pysqlite"),
                    # Used on the loop's thread only; a pool may hand it to another loop's.
                    connect_args={"check_same_thread": False},
                    pool_size=1,  # one read at a time (single_read)
                    max_overflow=0,
                    hide_parameters=True,
                    skip_autocommit_rollback=True,
                )
                # A reader in WAL mode waits for no writer: a busy database is a rare
                # recovery, and the loop waits at most this long for it.
                event.listen(self._loop_engine, "connect", _sqlite_connection(busy_ms=250))
        else:
            self.engine = create_async_engine(self.url, **pool, hide_parameters=True)
            _ping_on_checkout(self.engine)
        # What the process keeps in memory (hub.caches) is loaded on connections of its own:
        # a request waits for such a load inside its transaction, holding a connection of
        # the pool, so a load that asked the same pool could find every connection held by
        # its waiters (outside attack: 80 conversions after a rate change waited out the
        # pool's timeout). One connection kept, two more for loads of other kinds at once.
        # An in-memory SQLite database is one per connection: it has the one engine.
        self._kept_engine = self.engine
        if not self.is_sqlite or _is_file(self.url):
            self._kept_engine = create_async_engine(
                self.url,
                pool_size=1,
                max_overflow=2,
                pool_timeout=pool_timeout,
                hide_parameters=True,
                **({"connect_args": {"timeout": 30}} if self.is_sqlite else {}),
            )
            if self.is_sqlite:
                _configure_sqlite(self._kept_engine)
            else:
                _ping_on_checkout(self._kept_engine)
        # On SQLite a write transaction starts with BEGIN IMMEDIATE (see _configure_sqlite).
        self._write_engine = self.engine.execution_options(hub_write=True)
        # Lanes hold at most half the pool's connections, the other half left to every
        # other use (read sessions, bulk jobs, a write or read that finds every lane lent).
        lanes = (pool_size + max_overflow) // 4
        self._write_lanes = (
            None if self.is_sqlite else _Lanes(self._write_engine, lanes, self._room)
        )
        # One SELECT needs no transaction around it: no BEGIN on SQLite, none on PostgreSQL
        # either (asyncpg sends BEGIN and ROLLBACK as round trips of their own otherwise).
        self._single_engine = (
            self.engine.execution_options(hub_single=True)
            if self.is_sqlite
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self._read_lanes = (
            None if self.is_sqlite else _Lanes(self._single_engine, lanes, self._room)
        )
        self._lanes = [kind for kind in (self._write_lanes, self._read_lanes) if kind is not None]
        self._read_sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._kept_sessions = async_sessionmaker(self._kept_engine, expire_on_commit=False)
        self._kept_single = (
            self._kept_engine.execution_options(hub_single=True)
            if self.is_sqlite
            else self._kept_engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self._write_sessions = async_sessionmaker(
            self._write_engine,
            class_=_WriteAsyncSession,
            expire_on_commit=False,
            sync_session_class=_WriteSession,
        )
        # SQLite has one writer at a time and its busy handler polls, serving waiters in no
        # order: queue this process's writers here instead (p99 about 5x lower, measured).
        self._sqlite_writes = asyncio.Lock() if self.is_sqlite else None
        # What the process keeps in memory for every session to read (the Runtime puts its
        # hub.caches.Caches under KEPT): set on each session's info as it opens.
        self.kept: dict[str, Any] = {}
        # Ids drawn ahead from PostgreSQL's sequences, by table (next_id).
        self._id_blocks: dict[str, collections.deque[int]] = {}

    @classmethod
    def configured(cls, settings: Settings) -> Database:
        """The database the settings name, with their pool."""
        return cls(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_pool_overflow,
            pool_timeout=settings.db_pool_timeout_seconds,
        )

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    async def shed_idle_lanes(self, idle_seconds: float = LANE_IDLE_SECONDS) -> int:
        """Lanes unused for `idle_seconds` back to the pool (a periodic job: after a burst
        the process keeps no more open than its pool's size and the lanes still in use);
        how many."""
        return sum([await lanes.shed(idle_seconds) for lanes in self._lanes])

    async def _room(self) -> None:
        """Before a connection is taken from the pool: when the pool has none left to lend
        (every one lent, overflow included), the lanes' idle ones go back to it, so that
        work of one kind never waits while another kind's lanes sit idle."""
        pool: Any = self.engine.sync_engine.pool
        if pool.checkedin() or pool.checkedout() < pool.size() + pool._max_overflow:
            return
        await self.shed_idle_lanes(idle_seconds=0)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading; rolled back at the end."""
        if not self.is_sqlite:
            await self._room()
        async with self._read_sessions() as session:
            session.info.update(self.kept)
            yield session

    @asynccontextmanager
    async def kept_read(self) -> AsyncIterator[AsyncSession]:
        """A session for loading what the process keeps in memory (hub.caches), on
        connections no request holds: a request may wait for the load inside its own
        transaction."""
        async with self._kept_sessions() as session:
            yield session

    @asynccontextmanager
    async def kept_single_read(self) -> AsyncIterator[Reads]:
        """`single_read` on the kept connections (`kept_read`): one statement each, outside
        any transaction."""
        async with self._kept_single.connect() as conn:
            yield _AsyncReads(conn)

    @property
    def sync_engines(self) -> list[Engine]:
        """Every engine statements go through (for counters and listeners)."""
        kept = [self._kept_engine.sync_engine] if self._kept_engine is not self.engine else []
        loop = [self._loop_engine] if self._loop_engine else []
        return [self.engine.sync_engine, *kept, *loop]

    @asynccontextmanager
    async def single_read(self) -> AsyncIterator[Reads]:
        """Reads of one statement each, outside any transaction (each statement sees its
        own snapshot): the hot paths' reads, one round trip; on a SQLite file, on the
        loop's own thread (_LoopReads)."""
        if self._loop_engine is not None and not self._loop_read_open:
            # One at a time: a second while the first's holder awaits something goes
            # through aiosqlite. (A checkout from an empty pool would block the loop's
            # thread, and with it the holders that could give a connection back.)
            self._loop_read_open = True
            try:
                with self._loop_engine.connect() as sync_conn:
                    yield _LoopReads(sync_conn)
            finally:
                self._loop_read_open = False
            return
        with _recovering():
            if self._read_lanes is None:  # SQLite, through aiosqlite
                async with self._single_engine.connect() as conn:
                    yield _AsyncReads(conn)
                return
            async with self._read_lanes.lent() as (conn, driver):
                yield _AsyncReads(conn, driver)

    @asynccontextmanager
    async def write(self, progress: dict[str, bool] | None = None) -> AsyncIterator[AsyncSession]:
        """A write transaction, committed when the block ends without error. `progress`
        gets COMMITTING once the commit is under way (from then on a lost connection
        leaves the outcome unknown), and KEYED when the work claimed an idempotency key."""
        if not self.is_sqlite:
            async with self._asyncpg_write(progress) as session:
                yield session
            return
        async with (
            self._sqlite_writes or contextlib.nullcontext(),
            self._write_sessions() as session,
            session.begin(),
        ):
            self._opened(session)
            yield session
            await _before_commit(session, progress)

    def _opened(self, session: AsyncSession) -> None:
        session.info.update(self.kept)
        session.info[APPENDED] = []
        session.info[LAST] = []
        if not self.is_sqlite:
            session.info[DEFERRED] = _Deferred()
            session.info[_ID_BLOCKS] = self._id_blocks

    @asynccontextmanager
    async def _asyncpg_write(self, progress: dict[str, bool] | None) -> AsyncIterator[AsyncSession]:
        """Database.write on PostgreSQL: a lane (a pooled connection kept checked out:
        _Lanes), and on it the transaction begun and ended on asyncpg itself (BEGIN, then
        COMMIT or ROLLBACK), not through the ORM session's transaction (its begin, commit
        and close are a greenlet each and cost about 150 us of CPU a transaction:
        bench/README.md). The session is bound to that connection for what the ORM does
        meanwhile (its identity map; a flush, an ORM statement), which runs inside the
        transaction begun here: SQLAlchemy's asyncpg adapter begins one only when it has
        none, and ends none it did not begin."""
        assert self._write_lanes is not None
        async with self._write_lanes.lent() as (conn, adapter):
            session = self._write_sessions(bind=conn)
            session.info[_WRITE_DRIVER] = adapter
            self._opened(session)
            try:
                await _begin(adapter, conn.dialect)
                yield session
                await _before_commit(session, progress)
                await _commit(adapter, conn.dialect)
            except BaseException:
                await _rollback(adapter)
                raise
            finally:
                # Its instances let go of; a transaction the ORM began on the connection
                # is closed too, which sends nothing now that the adapter holds none (so
                # no greenlet is needed to run it: the sync session's own close).
                session.sync_session.close()

    async def transaction(
        self, work: Callable[[AsyncSession], Awaitable[T]], attempts: int = 8
    ) -> T:
        """Run `work` in one write transaction, again from the start after a lost race.

        Retries serialization failures and deadlocks (PostgreSQL), a busy
        database (SQLite) and RetryTransaction, with jittered backoff; and a connection
        lost before the commit was sent (nothing was written: the database rolls back
        what a lost connection began), or during the commit of work that claimed an
        idempotency key (committed or not, the key tells: run again, it finds the key
        taken and answers the stored result, or claims it and does the work).
        """
        try:  # the first attempt without tenacity's machinery: most need no other
            return await self._attempt(work)
        except Exception as error:
            if attempts <= 1 or not _is_retryable(error):
                raise
            first = error
        await asyncio.sleep(_wait(1, first))
        retrying = AsyncRetrying(
            retry=retry_if_exception(_is_retryable),
            stop=stop_after_attempt(attempts - 1),
            wait=_wait_after,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._attempt(work)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """One run of `work` in a write transaction; a lost connection after which it may
        run again is raised as LostConnection (a RetryTransaction)."""
        progress: dict[str, bool] = {}
        try:
            with _recovering():
                async with self.write(progress) as session:
                    return await work(session)
        except Exception as error:
            committing = progress.get(COMMITTING, False)
            if connection_broken(error) and (not committing or progress.get(KEYED, False)):
                log.info(
                    "database connection lost; running the transaction again", committing=committing
                )
                raise LostConnection(str(error)) from error
            raise

    async def ping(self) -> None:
        """Raise unless the database answers a trivial query."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        for lanes in self._lanes:
            await lanes.close()
        await self.engine.dispose()
        if self._kept_engine is not self.engine:
            await self._kept_engine.dispose()
        if self._loop_engine is not None:
            self._loop_engine.dispose()


def _is_file(url: URL) -> bool:
    """Whether a SQLite URL names a file (an in-memory database is one per connection)."""
    database = url.database or ""
    return database not in ("", ":memory:") and url.query.get("mode") != "memory"


def _sqlite_connection(*, busy_ms: int) -> Callable[[Any, Any], None]:
    """A connect listener: the driver's own transaction handling off (BEGIN is sent by the
    "begin" listener where wanted), WAL, the busy timeout, foreign keys."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return on_connect


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, a busy timeout, foreign keys, and BEGIN IMMEDIATE for writes.

    The driver's own transaction handling is turned off so that SQLAlchemy's
    "begin" event decides how each transaction starts (the SQLAlchemy recipe).
    """

    event.listen(engine.sync_engine, "connect", _sqlite_connection(busy_ms=30_000))

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get("hub_single", False):
            return  # autocommit: the statement is its own transaction
        write = options.get("hub_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


_DRIVER = "driver"  # on a session's info: its transaction and that one's asyncpg connection
_Binds = list[tuple[str | None, Any, Any]]


class Prepared:
    """A Core statement that PostgreSQL runs straight through asyncpg, in the session's
    transaction: compiled once, its parameters and result columns converted as SQLAlchemy
    converts them, without SQLAlchemy's execution context on every call (the larger part
    of a hot statement's CPU in the hub: bench/README.md). asyncpg prepares it once per
    connection (its statement cache). On SQLite, and for a statement with an expanding
    parameter (an IN list: use `= ANY(array)` here), it runs through SQLAlchemy."""

    def __init__(
        self, statement: Any, *, autoflush: bool = False, sends_deferred: bool = True
    ) -> None:
        """`autoflush`: flush the session's pending ORM changes first, as an ORM read would
        (for a read that replaces one). `sends_deferred`: send the session's deferred
        writes first (defer): for any statement that may read or refer to what they write."""
        self.statement: Any = statement
        self.autoflush = autoflush
        self.sends_deferred = sends_deferred
        self._compiled: tuple[str, _Binds, list[Any]] | None = None
        self._processors: list[tuple[str, Any]] | None = None

    def _for(self, dialect: Dialect) -> tuple[str, _Binds, list[Any]]:
        """The SQL, each positional parameter (its name and bind processor; for a literal
        of the SQL, None and its value, converted once) and each result column (its name
        and type; its processor comes with the first answer: _columns)."""
        if self._compiled is None:
            compiled: Any = self.statement.compile(dialect=dialect)
            binds: _Binds = []
            for name in compiled.positiontup:
                bind = compiled.binds[name]
                if bind.expanding:
                    raise TypeError("Prepared: no expanding parameters (use = ANY(array))")
                processor = bind.type._cached_bind_processor(dialect)
                if not bind.required and bind.callable is None:  # a literal of the SQL
                    binds.append((None, None, processor(bind.value) if processor else bind.value))
                else:
                    binds.append((name, processor, None))
            columns = [(c.keyname, c.type) for c in compiled._result_columns]
            self._compiled = (compiled.string, binds, columns)
        return self._compiled

    async def _columns(self, connection: Any, dialect: Dialect) -> list[tuple[str, Any]]:
        """Each result column's name and result processor, which may depend on the type
        PostgreSQL gives the column (as SQLAlchemy reads it from the cursor): asked once,
        by preparing the statement."""
        if self._processors is None:
            sql, _, columns = self._for(dialect)
            described = (await connection.prepare(sql)).get_attributes()
            self._processors = [
                (key, type_._cached_result_processor(dialect, attribute.type.oid))
                for (key, type_), attribute in zip(columns, described, strict=True)
            ]
        return self._processors

    async def all(
        self, session: AsyncSession, params: Mapping[str, Any]
    ) -> list[Mapping[str, Any]]:
        """The statement's rows, each by column name."""
        driver = await self._driver(session)
        if driver is None:
            found = await session.execute(self.statement, dict(params))
            return [dict(row._mapping) for row in found]
        records, columns = await self._run(session, driver, params, "fetch")
        return [_converted(columns, record) for record in records]

    async def row(
        self, session: AsyncSession, params: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        """The statement's first row by column name (None when it gave none)."""
        driver = await self._driver(session)
        if driver is None:
            first = (await session.execute(self.statement, dict(params))).first()
            return None if first is None else dict(first._mapping)
        record, columns = await self._run(session, driver, params, "fetchrow")
        return None if record is None else _converted(columns, record)

    async def scalar(self, session: AsyncSession, params: Mapping[str, Any]) -> Any:
        """The first column of the statement's first row (None when it gave none)."""
        found = await self.row(session, params)
        return None if found is None else next(iter(found.values()))

    async def execute(self, session: AsyncSession, params: Mapping[str, Any]) -> None:
        """Run the statement for its effect."""
        driver = await self._driver(session)
        if driver is None:
            await session.execute(self.statement, dict(params))
            return
        await self._run(session, driver, params, "execute")

    async def _driver(self, session: AsyncSession) -> Any:
        if self.sends_deferred:
            await send_deferred(session)
        if self.autoflush:
            sync = session.sync_session
            if sync.autoflush and not sync._is_clean():  # pending changes: as the ORM's reads
                await session.flush()
        return await _driver(session)

    async def read(
        self, conn: AsyncConnection, params: Mapping[str, Any], driver: Any = None
    ) -> list[dict[str, Any]]:
        """The statement's rows, each by column name, on a Core connection that runs each
        statement on its own (Database.single_read's): straight through asyncpg on
        PostgreSQL (`driver`: the connection's asyncpg adapter, when the caller has it), as
        in a transaction."""
        if conn.dialect.driver != "asyncpg":
            return [dict(row._mapping) for row in await conn.execute(self.statement, params)]
        if driver is None:
            driver = (await conn.get_raw_connection()).dbapi_connection
        records, columns = await self._send(
            conn.sync_engine, conn.sync_connection, driver, params, "fetch"
        )
        return [_converted(columns, record) for record in records]

    async def _run(
        self, session: AsyncSession, driver: Any, params: Mapping[str, Any], method: str
    ) -> tuple[Any, list[tuple[str, Any]]]:
        """asyncpg's answer to `method` (fetch, fetchrow, execute) and the result columns."""
        engine = session.get_bind()
        listened = None
        if engine.dispatch.before_cursor_execute:
            listened = (await session.connection()).sync_connection
        return await self._send(engine, listened, driver, params, method)

    async def _send(
        self,
        engine: Any,
        connection: Connection | None,
        driver: Any,
        params: Mapping[str, Any],
        method: str,
    ) -> tuple[Any, list[tuple[str, Any]]]:
        dialect = engine.dialect
        sql, binds, _ = self._for(dialect)
        args = [
            value if name is None else (bind(params[name]) if bind else params[name])
            for name, bind, value in binds
        ]
        if engine.dispatch.before_cursor_execute:  # as SQLAlchemy would tell its listeners
            engine.dispatch.before_cursor_execute(connection, None, sql, args, None, False)
        try:
            if driver._transaction is None:  # the transaction's first statement begins it
                await driver._start_transaction()
            raw = driver._connection
            columns = [] if method == "execute" else await self._columns(raw, dialect)
            return await getattr(raw, method)(sql, *args), columns
        except Exception as error:
            raise _lost_or_failed(error, driver, dialect, sql, args) from error


def _converted(columns: list[tuple[str, Any]], record: Any) -> dict[str, Any]:
    return {
        key: (convert(value) if convert else value)
        for (key, convert), value in zip(columns, record.values(), strict=True)
    }


def adopted(session: AsyncSession, model: type[M], row: Mapping[str, Any]) -> M:
    """A row this transaction read as Core (a Prepared statement: `row` by column key) as
    the session's instance of it, as a read with populate_existing would give it, without
    the ORM's loading: the instance the session holds for its key with these values, or a
    new persistent one (made detached, then added: nothing is written for it)."""
    mapped: Any = model
    keys, primary_key = _mapped_columns(mapped)
    identity = (model, tuple(row[column] for column in primary_key), None)
    sync = session.sync_session
    held: Any = sync.identity_map.get(identity)
    if held is not None:
        held_state = instance_state(held)
        if held_state.modified or held_state.expired_attributes:
            for attribute, column in keys:
                set_committed_value(held, attribute, row[column])
        else:  # nothing of it changed or expired: its values are its committed ones
            held.__dict__.update({attribute: row[column] for attribute, column in keys})
        found: M = held
        return found
    made: Any = _manager(mapped).new_instance()
    made.__dict__.update({attribute: row[column] for attribute, column in keys})
    _persistent(sync, made, identity[:2])
    _hold(sync, made)  # as a loaded row is held to the end of the transaction
    adopted_row: M = made
    return adopted_row


def _persistent(sync: Session, instance: Any, key: tuple[Any, tuple[Any, ...]]) -> None:
    """Make `instance` (new, or transient: its values what the row holds) the session's
    persistent row of identity `key` (its class and primary key), as the ORM's loading does
    (loading._instance): its values its committed ones, its identity given, and put in the
    identity map, without Session.add's cascade and attach of a detached instance (half of
    adopted's cost). A key the session holds already is Session.add's to refuse."""
    identity = (*key, None)
    if identity in sync.identity_map:
        make_transient_to_detached(instance)
        sync.add(instance)
        return
    state = instance_state(instance)
    state._commit_all(state.dict)
    state.key, state.identity_token = identity, None
    state.session_id = sync.hash_key
    sync.identity_map._add_unpresent(state, identity)


def labelled_join(
    first: Table, first_prefix: str, second: Table, second_prefix: str, on: Any
) -> Any:
    """SELECT every column of two joined tables, each labelled by its table's prefix (a
    Core read whose rows columns_of splits into each table's row)."""
    return select(
        *(c.label(f"{first_prefix}{c.key}") for c in first.c),
        *(c.label(f"{second_prefix}{c.key}") for c in second.c),
    ).select_from(first.join(second, on))


def columns_of(row: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The columns of one table in a joined read's row, each labelled `prefix` + its key."""
    return {key[len(prefix) :]: value for key, value in row.items() if key.startswith(prefix)}


def detached(model: type[M], values: Mapping[str, Any]) -> M:
    """An instance of `model` for a row as the database holds it (every column attribute
    given, by attribute name), detached: as the ORM's loading makes one, its values set
    without the attribute events a constructor fires for each (a new row's history, which a
    stored row has none of), then given its identity (make_transient_to_detached). Added to
    a session it is that session's persistent row, nothing written for it."""
    made = new_row(model, **values)
    make_transient_to_detached(made)
    return made


async def write_changes(session: AsyncSession, row: object) -> None:
    """Write what changed of a persistent row now, as one UPDATE by its primary key (a
    Core statement prepared once per model and set of columns), then take the row as the
    database holds it: the unit of work's flush of one changed row, without its machinery
    (it sorts the session's dependencies and cascades over every instance it holds: a
    sixth of a cancellation's CPU under cProfile). A row with a change other than to a
    column, or none, is left to the unit of work."""
    state: Any = sa_inspect(row)
    if not state.persistent or not state.modified:
        return
    mapper, values = state.mapper, {}
    for key, before in state.committed_state.items():
        prop = mapper.attrs.get(key)
        if not isinstance(prop, ColumnProperty) or len(prop.columns) != 1:
            return
        value = state.dict.get(key)
        if before is NO_VALUE or not state.manager[key].impl.is_equal(value, before):
            values[prop.columns[0].key] = value
    if values:
        (key_column,) = mapper.primary_key
        params = {f"v_{column}": value for column, value in values.items()}
        params["row_key"] = state.dict[mapper.get_property_by_column(key_column).key]
        table, columns = mapper.local_table, tuple(sorted(values))
        if defers(session):  # (nothing reads the row back from the database meanwhile)
            row_key = (table.name, params["row_key"])
            await defer(session, Deferred(_UpdateOf(table, columns), params, frozenset([row_key])))
        else:
            with session.no_autoflush:  # (SQLite's execution would flush the row first)
                await _update_of(table, columns).execute(session, params)
    # As a flush leaves a row it wrote: its values the committed ones, not dirty.
    state._commit_all(state.dict, session.sync_session.identity_map)


@functools.lru_cache(maxsize=64)
def _update_of(table: Table, columns: tuple[str, ...]) -> Prepared:
    """`UPDATE table SET columns WHERE its key = :row_key`, the values named v_<column>."""
    return Prepared(_UpdateOf(table, columns).update(""))


@dataclasses.dataclass(frozen=True)
class _UpdateOf:
    """_update_of's UPDATE as a deferred write's CTE (StatementPart)."""

    table: Table
    columns: tuple[str, ...]

    def update(self, prefix: str) -> Any:
        (key,) = self.table.primary_key.columns
        return (
            update(self.table)
            .where(key == bindparam(f"{prefix}row_key", type_=key.type))
            .values(
                {c: bindparam(f"{prefix}v_{c}", type_=self.table.c[c].type) for c in self.columns}
            )
        )

    def build(self, prefix: str) -> tuple[list[Any], list[Any]]:
        return [self.update(prefix).cte(f"{prefix}updated")], []


async def insert_row(session: AsyncSession, row: object, *, appended: bool = False) -> None:
    """Insert a new (transient) row now, its key set, as one INSERT of every column it
    holds (a Core statement prepared once per table), and make it the session's persistent
    instance of that row: the unit of work's flush of one new row, without its machinery.
    A row already in the session is left to the unit of work.

    `appended`: in Database.write's transaction, the INSERT goes with the appended rows
    instead (append), ahead of them all (they may refer to it), one round trip fewer; the
    instance is the session's at once all the same. For a row nothing reads back from the
    database before those rows are written (write_pending, or the commit)."""
    state: Any = sa_inspect(row)
    if not state.transient:
        return
    table, values = state.mapper.local_table, {}
    for prop in state.mapper.column_attrs:
        column = prop.columns[0]
        if prop.key not in state.dict:
            if column.default is not None or column.server_default is not None:
                raise AssertionError(f"insert_row: {table.name}.{column.key} has a default; set it")
            state.dict[prop.key] = None  # as inserted: the instance holds what the row does
        values[column.key] = state.dict[prop.key]
    pending: list[tuple[Table, Sequence[Mapping[str, Any]]]] | None = session.info.get(APPENDED)
    if appended and pending is not None:
        pending.insert(0, (table, [values]))
    else:
        await _row_insert(table).execute(session, {f"a0_0_{k}": v for k, v in values.items()})
    _, primary_key = _mapped_columns(state.class_)
    _persistent(session.sync_session, row, (state.class_, tuple(values[c] for c in primary_key)))
    _hold(session.sync_session, row)  # as a row the unit of work wrote is held to the end


@functools.lru_cache(maxsize=64)
def _row_insert(table: Table) -> Prepared:
    return Prepared(_insert_rows(0, table, tuple(c.key for c in table.columns), 1))


def new_row(model: type[M], **values: Any) -> M:
    """`model(**values)` for the hot paths: a new (transient) row's instance holding these
    column values, set without the attribute events a constructor fires for each. The
    unit of work inserts what an instance holds, and `new_row_values` reads it, all the
    same; later changes to it are tracked as any instance's. Column attributes only."""
    mapped: Any = model
    made: M = _manager(mapped).new_instance()
    made.__dict__.update(values)
    return made


@functools.cache
def _manager(model: type[Any]) -> Any:
    """The mapper's class manager, which makes instances as loading does, the mappers
    configured first: a constructor configures them on its first call (its init event),
    and an instance made without one, before any query has, would have no attributes."""
    configure_mappers()
    return sa_inspect(model).class_manager


def held_row(session: AsyncSession, model: type[M], key: Any) -> M | None:
    """The instance of `model` with primary key `key` (a single column) that the session
    holds, if it holds one: no read, and no check that it is loaded."""
    held: M | None = session.sync_session.identity_map.get((model, (key,), None))
    return held


async def get_row(
    session: AsyncSession, model: type[M], key: Any, *, lock: bool = False
) -> M | None:
    """`session.get(model, key)` for the hot paths (a single-column primary key): the
    instance the session holds, else one Prepared read, adopted; with `lock`, always read,
    FOR NO KEY UPDATE, and the instance refreshed (as `with_for_update=NO_KEY_UPDATE` would)."""
    if not lock:
        held = held_row(session, model, key)
        if held is not None and not sa_inspect(held).expired:
            return held
    mapped: Any = model
    row = await _read_by_key(mapped, lock).row(session, {"key": key})
    return None if row is None else adopted(session, model, row)


@functools.cache
def _read_by_key(model: Any, lock: bool) -> Prepared:
    table = sa_inspect(model).local_table
    (column,) = table.primary_key.columns
    query = select(*table.c).where(column == bindparam("key", type_=column.type))
    return Prepared(query.with_for_update(key_share=True) if lock else query, autoflush=True)


@functools.cache
def _mapped_columns(model: Any) -> tuple[list[tuple[str, str]], list[str]]:
    """A model's (attribute, column key) pairs, and its primary key's column keys."""
    mapper: Any = sa_inspect(model)
    keys = [(prop.key, prop.columns[0].key) for prop in mapper.column_attrs]
    return keys, [column.key for column in mapper.primary_key]


async def _driver(session: AsyncSession) -> Any:
    """The session's transaction's asyncpg connection as SQLAlchemy adapts it, or None on
    another driver. Kept on the session for its transaction (the sync session's: the
    async one's is a proxy looked up anew on each call)."""
    written: Any = session.info.get(_WRITE_DRIVER)
    if written is not None:
        return written
    transaction = session.sync_session.get_transaction()
    kept = session.info.get(_DRIVER)
    if kept is not None and kept[0] is transaction and transaction is not None:
        return kept[1]
    connection = await session.connection()
    adapted = None
    if connection.dialect.driver == "asyncpg":
        adapted = (await connection.get_raw_connection()).dbapi_connection
    session.info[_DRIVER] = (session.sync_session.get_transaction(), adapted)
    return adapted


def _translated(
    error: Exception, driver: Any, dialect: Dialect, sql: str, args: list[Any]
) -> Exception:
    """asyncpg's error as SQLAlchemy would raise it (IntegrityError, OperationalError, ...,
    with the driver's error, and its SQLSTATE, as `orig`)."""
    try:
        driver._handle_exception(error)
    except Exception as adapted:
        return DBAPIError.instance(
            sql,
            args,
            adapted,
            dialect.loaded_dbapi.Error,
            hide_parameters=True,  # as the engines: an error's text carries no member's data
            dialect=dialect,
        )
    return error  # pragma: no cover: _handle_exception always raises
