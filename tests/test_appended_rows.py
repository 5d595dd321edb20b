"""Rows appended to a write transaction (hub.db.append) are all inserted as it commits,
each table's rows in the order appended, however they are grouped into statements."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from hub.db import Database, append, utcnow
from hub.models import OutboxEvent
from hub.models.base import table_of
from tests.ledger.test_concurrency import _member_with


def _event(n: int) -> dict[str, Any]:
    return {
        "event_id": f"evt_append_{n:02d}",
        "merchant_id": "jade",
        "type": "test.appended",
        "payload": f'{{"n": {n}}}',
        "dedupe_key": None,
        "fanned_out": False,
        "created_at": utcnow(),
    }


@pytest.mark.parametrize("counts", [(1, 1), (2, 3), (4,), (1, 6), (3, 3, 3)])
async def test_appended_rows_are_inserted_in_the_order_appended(
    db_url: str, counts: tuple[int, ...]
) -> None:
    """`counts`: the rows of each append call, all into one table (a table given a few
    rows goes into the one statement on PostgreSQL, one given many an INSERT of its own)."""
    db = Database(db_url)
    try:
        await _member_with(db, 1)  # the merchant the events are for
        numbers = iter(range(100))
        calls = [[_event(next(numbers)) for _ in range(count)] for count in counts]

        async def work(session: Any) -> None:
            for rows in calls:
                await append(session, table_of(OutboxEvent), rows)

        await db.transaction(work)
        async with db.read() as session:
            stored = await session.scalars(
                select(OutboxEvent.event_id)
                .where(OutboxEvent.type == "test.appended")
                .order_by(OutboxEvent.id)
            )
            assert list(stored) == [row["event_id"] for rows in calls for row in rows]
    finally:
        await db.dispose()
