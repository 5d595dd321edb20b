"""The transactional outbox: an event is written in the same transaction as its cause.

A caller that moves points calls `emit` inside its own transaction; if that transaction
rolls back, the event never existed, and if it commits, the delivery job will send it at
least once. Payloads carry ids and amounts, never a member's name or phone.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db import append, insert_or_skip, utcnow
from hub.enums import WebhookEvent
from hub.ids import new_id
from hub.models import OutboxEvent, WebhookSubscription
from hub.models.base import table_of

_OUTBOX = table_of(OutboxEvent)


def event_row(
    event: WebhookEvent, merchant: str, data: Mapping[str, Any], now: dt.datetime
) -> dict[str, Any]:
    """The outbox row of one event for one merchant (its payload is what receivers get)."""
    event_id = new_id("evt")
    body = {
        "id": event_id,
        "type": event.value,
        "merchantId": merchant,
        "createdAt": now.isoformat().replace("+00:00", "Z"),
        "data": dict(data),
    }
    return {
        "event_id": event_id,
        "merchant_id": merchant,
        "type": event.value,
        "payload": json.dumps(body, separators=(",", ":"), default=str),
        "dedupe_key": None,
        "fanned_out": False,
        "created_at": now,
    }


async def listened(session: AsyncSession, event: WebhookEvent, merchant: str) -> bool:
    """Whether an active subscription would receive `event` of `merchant` now. Delivery only
    reaches subscriptions made before an event, so an event no one listens to is never
    sent: a bulk writer may skip writing it."""
    found = await session.scalars(
        select(WebhookSubscription.events).where(
            WebhookSubscription.active.is_(True),
            or_(
                WebhookSubscription.merchant_id.is_(None),
                WebhookSubscription.merchant_id == merchant,
            ),
        )
    )
    return any(event.value in events.split() for events in found)


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
        row = event_row(event, merchant, data, now)
        row["dedupe_key"] = f"{dedupe_key}:{merchant}" if dedupe_key else None
        rows.append(row)
    if not rows:
        return
    if dedupe_key is None:  # appended: written as the transaction commits (hub.db.append)
        await append(session, _OUTBOX, rows)
        return
    statement = insert_or_skip(session, OutboxEvent)
    for row in rows:
        await session.execute(statement.values(**row))
