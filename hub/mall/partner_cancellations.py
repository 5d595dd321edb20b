"""Partner events that cancel bookings (flight cancelled, event cancelled) become
cancellations with full refund and compensation, as the mutation would do."""

from __future__ import annotations

from connectors.base import ConnectorFactory, PartnerEvent
from hub.auth import Principal
from hub.config import Settings
from hub.db import Database
from hub.enums import CancellationReason, Role
from hub.errors import DomainError
from hub.mall import redemption, saga
from hub.partner_events import Handler


def cancellation_handler(
    db: Database, settings: Settings, factory: ConnectorFactory, reason: CancellationReason
) -> Handler:
    async def handle(merchant_id: str, event: PartnerEvent) -> str:
        principal = Principal(
            key_id=f"partner:{merchant_id}", role=Role.MERCHANT, merchant_id=merchant_id
        )
        outcomes = []
        for booking in event.bookings:
            async with db.read() as session:
                found = await redemption.by_fulfillment(session, merchant_id, booking.booking_ref)
            if found is None:
                outcomes.append(f"booking {booking.booking_ref!r}: no redemption of yours")
                continue
            request = redemption.CancelRequest(
                redemption_id=found.id,
                reason=reason,
                idempotency_key=f"event:{event.event_id}:{found.id}",
            )
            try:
                # The partner has cancelled the booking itself: the hub refunds and
                # compensates.
                done = await redemption.cancel(
                    db, principal, settings, factory, request, booking_already_cancelled=True
                )
            except DomainError as exc:
                outcomes.append(f"{booking.booking_ref}: {exc.message}")
                continue
            outcomes.append(f"{booking.booking_ref}: {done.id} {saga.status_of(done).lower()}")
        return "; ".join(outcomes) or "no bookings named"

    return handle
