"""Multi-row statements, in the caller's transaction: many rows in one INSERT, many
balances in one UPDATE.

SQLAlchemy's `execute(insert(t), rows)` sends one INSERT per row (executemany), and
`insert(t).values(rows)` spends longer compiling than the database spends inserting. So:
on PostgreSQL, `INSERT ... SELECT unnest(:a), unnest(:b) ...` with one array per column (one
statement per chunk, compiled once); on SQLite, `INSERT ... VALUES (?, ?), (?, ?) ...` up to
SQLite's limit of bound variables, its text derived from SQLAlchemy's own compilation and the
values passed through each column type's bind processor. `bench/imports.py` measures the
import against these same statements with nothing else around them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import BigInteger, Table, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

SQLITE_VARIABLES = 32_766  # SQLITE_MAX_VARIABLE_NUMBER since SQLite 3.32


async def insert_rows(
    session: AsyncSession, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """INSERT `rows` (tuples in the order of `columns`) in as few statements as the
    database allows."""
    if not rows:
        return
    conn = await session.connection()
    names = tuple(columns)
    if conn.dialect.name == "postgresql":
        arrays = {name: [row[i] for row in rows] for i, name in enumerate(names)}
        await conn.execute(_unnest_insert(table, names), arrays)
        return
    processors = _processors(table, names, conn.dialect)
    page = max(1, SQLITE_VARIABLES // len(names))
    for start in range(0, len(rows), page):
        part = rows[start : start + page]
        values: list[Any] = []
        for row in part:
            for value, process in zip(row, processors, strict=True):
                values.append(
                    process(value) if process is not None and value is not None else value
                )
        await conn.exec_driver_sql(
            _values_insert(table, names, len(part), conn.dialect), tuple(values)
        )


async def set_column(
    session: AsyncSession, table: Table, column: str, values: Sequence[tuple[int, Any]]
) -> None:
    """UPDATE table SET column = value WHERE id = key, for every (key, value)."""
    if not values:
        return
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        await conn.execute(
            _unnest_update(table, column),
            {"keys": [k for k, _ in values], "values": [v for _, v in values]},
        )
        return
    # SQLite: one prepared UPDATE by rowid, run for each pair inside the driver.
    await conn.execute(
        _keyed_update(table, column), [{"k_key": k, "k_value": v} for k, v in values]
    )


@functools.lru_cache(maxsize=64)
def _unnest_insert(table: Table, names: tuple[str, ...]) -> Any:
    arrays = [
        func.unnest(bindparam(name, type_=ARRAY(table.c[name].type))).label(name) for name in names
    ]
    return insert(table).from_select(list(names), select(*arrays))


@functools.lru_cache(maxsize=16)
def _unnest_update(table: Table, column: str) -> Any:
    given = select(
        func.unnest(bindparam("keys", type_=ARRAY(BigInteger()))).label("key"),
        func.unnest(bindparam("values", type_=ARRAY(table.c[column].type))).label("value"),
    ).subquery("given")
    return (
        update(table)
        .where(table.c.id == given.c.key)
        .values({column: given.c.value})
        .execution_options(synchronize_session=False)
    )


@functools.lru_cache(maxsize=16)
def _keyed_update(table: Table, column: str) -> Any:
    return (
        update(table)
        .where(table.c.id == bindparam("k_key"))
        .values({column: bindparam("k_value")})
        .execution_options(synchronize_session=False)
    )


@functools.lru_cache(maxsize=64)
def _values_insert(table: Table, names: tuple[str, ...], count: int, dialect: Dialect) -> str:
    ordered = tuple(c.name for c in table.columns if c.name in names)
    if ordered != names:  # the compiled VALUES lists the table's columns in table order
        raise AssertionError(f"give the columns of {table.name} in table order: {ordered}")
    single = str(insert(table).values({n: bindparam(n) for n in names}).compile(dialect=dialect))
    head, _, group = single.partition(" VALUES ")
    return f"{head} VALUES {', '.join([group] * count)}"


def _processors(
    table: Table, names: tuple[str, ...], dialect: Dialect
) -> list[Callable[[Any], Any] | None]:
    return [table.c[name].type._cached_bind_processor(dialect) for name in names]
