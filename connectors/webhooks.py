"""Partner webhooks: check the signature and freshness, and read the partner's event."""

from __future__ import annotations

import json
from collections.abc import Mapping

from connectors import signing
from connectors.base import EventBooking, PartnerEvent

# The partner's event names, and the hub's for them.
EVENT_TYPES = {
    "flight.cancelled": "FLIGHT_CANCELLED",
    "event.cancelled": "EVENT_CANCELLED",
    "booking.cancelled": "MERCHANT_CANCELLED",
    "booking.confirmed": "BOOKING_CONFIRMED",
}


class WebhookRejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse(secret: str, headers: Mapping[str, str], body: bytes) -> PartnerEvent:
    """The event in a signed webhook; WebhookRejected (401 or 400) when it must be refused."""
    problem = signing.verify(
        secret, headers.get("x-partner-timestamp"), headers.get("x-partner-signature"), body
    )
    if problem:
        raise WebhookRejected(401, problem)
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise WebhookRejected(400, "the body is not JSON") from exc
    if not isinstance(data, dict):
        raise WebhookRejected(400, "the body must be a JSON object")
    event_id = headers.get("x-partner-event-id") or data.get("eventId")
    if not event_id:
        raise WebhookRejected(400, "X-Partner-Event-Id is required")
    kind = str(data.get("type", ""))
    bookings = [
        EventBooking(
            booking_ref=str(b.get("pnr") or b.get("bookingRef") or b.get("confirmation") or ""),
            reference=b.get("reference"),
        )
        for b in data.get("bookings", [])
        if isinstance(b, dict)
    ]
    return PartnerEvent(
        event_id=str(event_id), type=EVENT_TYPES.get(kind, kind), bookings=bookings, raw=data
    )
