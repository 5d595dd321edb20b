"""Partner webhooks: check the signature and freshness, and read the partner's event."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping

from connectors import signing
from connectors.base import EventBooking, PartnerEvent
from hub.validate import RepeatedKey, unique_keys

MAX_BODY_BYTES = 64 * 1024  # an event is a few hundred bytes; anything this big is refused

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


async def read_body(chunks: AsyncIterator[bytes], limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, read no further than `limit` bytes (Content-Length is not trusted);
    WebhookRejected (413) beyond it, before anything is hashed or parsed."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise WebhookRejected(413, f"the body is larger than {limit // 1024} KiB")
    return bytes(body)


def parse(secret: str, headers: Mapping[str, str], body: bytes) -> PartnerEvent:
    """The event in a signed webhook; WebhookRejected (401 or 400) when it must be refused.

    The event's id is the `eventId` inside the signed body: replays are refused on it.
    The X-Partner-Event-Id header is not signed, so it decides nothing and is ignored.
    """
    if len(body) > MAX_BODY_BYTES:
        raise WebhookRejected(413, f"the body is larger than {MAX_BODY_BYTES // 1024} KiB")
    problem = signing.verify(
        secret, headers.get("x-partner-timestamp"), headers.get("x-partner-signature"), body
    )
    if problem:
        raise WebhookRejected(401, problem)
    try:
        data = json.loads(body, object_pairs_hook=unique_keys)
    except RepeatedKey as exc:
        raise WebhookRejected(400, str(exc)) from exc
    except (ValueError, RecursionError) as exc:  # not JSON, or nested past the decoder
        raise WebhookRejected(400, "the body is not JSON") from exc
    if not isinstance(data, dict):
        raise WebhookRejected(400, "the body must be a JSON object")
    event_id = data.get("eventId")
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 120:
        raise WebhookRejected(400, "the signed body needs eventId, a string of 1-120 characters")
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
        event_id=event_id, type=EVENT_TYPES.get(kind, kind), bookings=bookings, raw=data
    )
