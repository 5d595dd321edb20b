"""The transactional outbox: an event is written in the same transaction as its cause.

A caller that moves points calls `emit` inside its own transaction; if that transaction
rolls back, the event never existed, and if it commits, the delivery job will send it at
least once. Payloads carry ids and amounts, never a member's name or phone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db import utcnow
from hub.enums import WebhookEvent
from hub.ids import new_id
from hub.models import OutboxEvent


async def emit(
    session: AsyncSession,
    event: WebhookEvent,
    merchants: Iterable[str],
    data: Mapping[str, Any],
    *,
    dedupe_key: str | None = None,
) -> None:
    """Write `event` for each merchant concerned (once each), inside the caller's transaction.

    With `dedupe_key`, an event already written under that key is not written again (the
    daily "points expiring" event runs on every replica)."""
    now = utcnow()
    rows = []
    for merchant in sorted(set(merchants)):
        event_id = new_id("evt")
        body = {
            "id": event_id,
            "type": event.value,
            "merchantId": merchant,
            "createdAt": now.isoformat().replace("+00:00", "Z"),
            "data": dict(data),
        }
        rows.append(
            {
                "event_id": event_id,
                "merchant_id": merchant,
                "type": event.value,
                "payload": json.dumps(body, separators=(",", ":"), default=str),
                "dedupe_key": f"{dedupe_key}:{merchant}" if dedupe_key else None,
                "fanned_out": False,
                "created_at": now,
            }
        )
    if not rows:
        return
    if dedupe_key is None:
        await session.execute(insert(OutboxEvent), rows)
        return
    dialect = session.get_bind().dialect.name
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(OutboxEvent)
    for row in rows:
        await session.execute(statement.values(**row).on_conflict_do_nothing())
