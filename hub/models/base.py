"""The declarative base, its column types and naming convention."""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Enum,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    text,
    type_coerce,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import DeclarativeBase

from hub.db import ExactDecimal, UTCDateTime

# BIGINT on PostgreSQL; INTEGER on SQLite so that the key aliases the rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012
        Decimal: ExactDecimal(18, 4),
        dt.datetime: UTCDateTime(),
        int: BigInteger(),
    }


def stored(enum: type[StrEnum], length: int) -> Enum:
    """A StrEnum column: VARCHAR(length) holding the member's value (no native ENUM type
    and no CHECK, so a new member needs no migration), read back as the member, and a
    value outside the enum refused before it is written."""
    return Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=length,
        validate_strings=True,
        values_callable=lambda members: [m.value for m in members],
    )


def partial_index(name: str, *columns: str, where: str, unique: bool = False) -> Index:
    """An index of the rows for which `where` (SQL) holds, the same on SQLite and PostgreSQL."""
    return Index(
        name,
        *columns,
        unique=unique,
        sqlite_where=text(where),
        postgresql_where=text(where),
    )


def as_text(column: Any) -> Any:
    """A stored enum column read as its text, for SQL that mixes it with strings that are
    no member of the enum (`coalesce(status, 'missing')`)."""
    return type_coerce(column, String)


def table_of(model: type[Base]) -> Table:
    """A model's table, typed as one (for the hot paths' Core statements)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def new_row_values(row: Base) -> dict[str, Any]:
    """A new (transient) row's columns as a Core INSERT takes them, by column key: what the
    unit of work would write for it, without the unit of work. An autoincrement key not
    set is left to the database; every other column is written as the row holds it (a
    value never set is None, as the attribute would read)."""
    state: Any = sa_inspect(row)
    if not state.transient:
        raise AssertionError(f"new_row_values: {row!r} is not a new row")
    held = state.dict  # the instance's own values: no attribute access per column
    values: dict[str, Any] = {}
    for key, column, generated in _insert_columns(type(row)):
        value = held.get(key)
        if value is None and generated:
            continue
        values[column] = value
    return values


@functools.cache
def _insert_columns(model: type[Base]) -> tuple[tuple[str, str, bool], ...]:
    """Each column attribute of a model: its key, its column's key, and whether the database
    generates it when it is not set (an autoincrement primary key)."""
    found = []
    for prop in sa_inspect(model).column_attrs:
        column = prop.columns[0]
        generated = column.primary_key and column.autoincrement in (True, "auto")
        found.append((prop.key, column.key, bool(generated)))
    return tuple(found)
