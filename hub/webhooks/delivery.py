"""Deliver outbox events to subscriptions: signed, at least once, retried with backoff.

Every replica may run this job. The fan-out and each delivery attempt are claimed with
conditional UPDATEs, so an event is fanned out once and an attempt is made by one replica.
Each attempt runs in its own task with its own timeout: a slow or dead receiver holds only
its own deliveries, never the others' nor the API.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools

import httpx
import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectors import signing
from hub import partner_urls
from hub.config import Settings
from hub.db import Database, utcnow
from hub.enums import DeliveryStatus
from hub.models import OutboxEvent, WebhookDelivery, WebhookSubscription
from hub.models.base import table_of

log = structlog.get_logger(__name__)

FAN_OUT_BATCH = 500
MAX_IN_FLIGHT = 100
MAX_BACKOFF = dt.timedelta(hours=1)
PENDING, DELIVERED, FAILED = DeliveryStatus.PENDING, DeliveryStatus.DELIVERED, DeliveryStatus.FAILED


def backoff(settings: Settings, attempts: int) -> dt.timedelta:
    """base x 2^(attempts-1), at most an hour."""
    delay = dt.timedelta(seconds=settings.webhook_backoff_seconds * 2 ** min(attempts - 1, 20))
    return min(delay, MAX_BACKOFF)


class Dispatcher:
    def __init__(
        self, db: Database, settings: Settings, client: httpx.AsyncClient | None = None
    ) -> None:
        self.db = db
        self.settings = settings
        self._client = client
        self._in_flight: dict[int, asyncio.Task[None]] = {}

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.settings.webhook_timeout_seconds, follow_redirects=False
            )
        return self._client

    async def close(self) -> None:
        for task in list(self._in_flight.values()):
            task.cancel()
        await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    async def run_once(self) -> int:
        """Fan new events out, then start the due attempts; the number started."""
        while await self.db.transaction(self._fan_out) == FAN_OUT_BATCH:
            pass
        return await self._start_due()

    async def drain(self) -> None:
        """Wait for the attempts in flight (tests and shutdown)."""
        await asyncio.gather(*list(self._in_flight.values()), return_exceptions=True)

    async def _fan_out(self, session: AsyncSession) -> int:
        """Claim up to a batch of new events (another replica's claim is skipped, not
        waited for) and make their deliveries; the number claimed. Core rows, not ORM
        instances: an event's payload is not read here, nor the events one by one (measured
        at 25 us of CPU an event before, about 4 now: bench/README.md)."""
        events = table_of(OutboxEvent)
        pending = (
            select(events.c.id)
            .where(events.c.fanned_out.is_(False))
            .order_by(events.c.id)
            .limit(FAN_OUT_BATCH)
        )
        if session.get_bind().dialect.name == "postgresql":
            pending = pending.with_for_update(skip_locked=True, key_share=True)
        returned = (
            await session.execute(
                update(events)
                .where(events.c.id.in_(pending.scalar_subquery()))
                .values(fanned_out=True)
                .returning(events.c.id, events.c.merchant_id, events.c.type, events.c.created_at)
            )
        ).all()
        claimed = sorted(returned, key=lambda event: event.id)  # RETURNING's order is unspecified
        if not claimed:
            return 0
        subscriptions = table_of(WebhookSubscription)
        listening = (
            await session.execute(
                select(
                    subscriptions.c.id,
                    subscriptions.c.merchant_id,
                    subscriptions.c.events,
                    subscriptions.c.created_at,
                ).where(subscriptions.c.active.is_(True))
            )
        ).all()
        now = utcnow()
        rows = [
            {
                "subscription_id": sub.id,
                "event_id": event.id,
                "event_type": event.type,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for event in claimed
            for sub in listening
            if sub.merchant_id in (None, event.merchant_id)
            and event.type in sub.events.split()
            and sub.created_at <= event.created_at
        ]
        if rows:
            await session.execute(insert(WebhookDelivery), rows)
        return len(claimed)

    async def _start_due(self) -> int:
        room = MAX_IN_FLIGHT - len(self._in_flight)
        if room <= 0:
            return 0
        claimed = await self.db.transaction(functools.partial(self._claim, limit=room))
        for delivery, event, subscription in claimed:
            task = asyncio.create_task(self._attempt(delivery, event, subscription))
            self._in_flight[delivery.id] = task
            task.add_done_callback(functools.partial(self._done, delivery.id))
        return len(claimed)

    def _done(self, delivery_id: int, _task: asyncio.Task[None]) -> None:
        self._in_flight.pop(delivery_id, None)

    async def _claim(
        self, session: AsyncSession, limit: int
    ) -> list[tuple[WebhookDelivery, OutboxEvent, WebhookSubscription]]:
        now = utcnow()
        due = list(
            await session.scalars(
                select(WebhookDelivery.id)
                .where(
                    WebhookDelivery.status == PENDING,
                    WebhookDelivery.next_attempt_at <= now,
                    WebhookDelivery.id.not_in(list(self._in_flight)),
                )
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(limit)
            )
        )
        if not due:
            return []
        # The lease: no other replica takes these until the attempt could have timed out.
        lease = now + dt.timedelta(seconds=self.settings.webhook_timeout_seconds + 30)
        ids = list(
            await session.scalars(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id.in_(due),
                    WebhookDelivery.status == PENDING,
                    WebhookDelivery.next_attempt_at <= now,
                )
                .values(next_attempt_at=lease, attempts=WebhookDelivery.attempts + 1)
                .returning(WebhookDelivery.id)
            )
        )
        if not ids:
            return []
        rows = await session.execute(
            select(WebhookDelivery, OutboxEvent, WebhookSubscription)
            .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
            .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
            .where(WebhookDelivery.id.in_(ids))
        )
        found = [(d, e, s) for d, e, s in rows]
        for delivery, _, _ in found:
            session.expunge(delivery)
        return found

    async def _attempt(
        self, delivery: WebhookDelivery, event: OutboxEvent, subscription: WebhookSubscription
    ) -> None:
        status_code: int | None = None
        error: str | None = None
        refused = None
        if subscription.active:
            refused = await partner_urls.resolved_problem(
                subscription.url, allow_private=self.settings.allow_private_partners
            )
        if not subscription.active:
            error = "unsubscribed"
        elif refused is not None:
            error = f"not sent: {refused}"
        else:
            body = event.payload.encode()
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "points-exchange-hub-webhooks/1",
                "X-Hub-Event": event.type,
                "X-Hub-Event-Id": event.event_id,
                **signing.headers(subscription.secret, body),
            }
            try:
                response = await self.client.post(subscription.url, content=body, headers=headers)
                status_code = response.status_code
                if not 200 <= status_code < 300:
                    error = f"HTTP {status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
        try:
            await self.db.transaction(
                lambda s: self._record(
                    s, delivery, subscription, status_code, error, final=refused is not None
                )
            )
        except Exception:  # recorded next time: the lease expires and the attempt repeats
            log.exception("webhook delivery not recorded", delivery=delivery.id)

    async def _record(
        self,
        session: AsyncSession,
        delivery: WebhookDelivery,
        subscription: WebhookSubscription,
        status_code: int | None,
        error: str | None,
        *,
        final: bool = False,
    ) -> None:
        now = utcnow()
        values: dict[str, object] = {"last_status_code": status_code, "last_error": error}
        if error is None:
            values |= {"status": DELIVERED, "delivered_at": now, "next_attempt_at": None}
        else:
            following = now + backoff(self.settings, delivery.attempts)
            deadline = delivery.created_at + dt.timedelta(hours=self.settings.webhook_retry_hours)
            if final or not subscription.active or following > deadline:
                values |= {"status": FAILED, "next_attempt_at": None}
            else:
                values |= {"next_attempt_at": following}
            log.info(
                "webhook delivery failed",
                delivery=delivery.id,
                subscription=subscription.id,
                attempt=delivery.attempts + 1,
                error=error,
            )
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery.id, WebhookDelivery.status == PENDING)
            .values(**values)
        )
