"""Partner events: stored once each, then handed to the handler for their type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import PartnerEvent as Event
from hub.db import Database, utcnow
from hub.models import PartnerEvent

log = structlog.get_logger(__name__)

Handler = Callable[[str, Event], Awaitable[str]]


@dataclass
class Events:
    """Where handlers for event types are registered (the mall handles cancellations)."""

    db: Database
    handlers: dict[str, Handler]

    async def record(self, merchant_id: str, event: Event) -> int | None:
        """Store the event; None when this event id was seen before (a replay)."""

        async def work(session: AsyncSession) -> int | None:
            row = PartnerEvent(
                merchant_id=merchant_id,
                event_id=event.event_id,
                type=event.type,
                payload=event.stored(),
            )
            session.add(row)
            try:
                await session.flush()
            except IntegrityError:
                return None
            return row.id

        try:
            return await self.db.transaction(work, attempts=1)
        except IntegrityError:
            return None

    async def handle(self, row_id: int, merchant_id: str, event: Event) -> str:
        """Run the event's handler and keep its outcome; events without one stay stored."""
        handler = self.handlers.get(event.type)
        if handler is None:
            outcome = "stored; no handler for this event type"
        else:
            try:
                outcome = await handler(merchant_id, event)
            except Exception as exc:
                log.exception("partner event failed", merchant=merchant_id, event=event.event_id)
                outcome = f"failed: {type(exc).__name__}; will be retried"
                await self._mark(row_id, outcome, done=False)
                return outcome
        await self._mark(row_id, outcome, done=True)
        return outcome

    async def _mark(self, row_id: int, outcome: str, *, done: bool) -> None:
        async def work(session: AsyncSession) -> None:
            row = await session.get(PartnerEvent, row_id)
            assert row is not None
            row.outcome = outcome
            row.processed_at = utcnow() if done else None

        await self.db.transaction(work)

    async def retry_unprocessed(self) -> int:
        """Hand events whose handler failed (or that arrived before a handler) to it again."""
        async with self.db.read() as session:
            rows = list(
                await session.scalars(
                    select(PartnerEvent)
                    .where(PartnerEvent.processed_at.is_(None))
                    .order_by(PartnerEvent.id)
                    .limit(100)
                )
            )
        for row in rows:
            event = Event.from_stored(row.event_id, row.type, row.payload)
            if row.type in self.handlers:
                await self.handle(row.id, row.merchant_id, event)
        return len(rows)
