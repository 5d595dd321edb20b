"""How a partner's JSON names the parts of a slot, a booking and a points movement.

Partners differ in these only by their words (`seatId` or `availabilityId`, `pnr` or
`confirmation`), so a Dialect names them here and connectors.partner reads and writes
every partner's JSON with the same code. What a partner does differently, not just
calls differently, stays a method of its Dialect.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SlotFields:
    """Where a slots listing keeps its slots, and each slot its parts."""

    listing: str
    ref: str
    starts_at: str
    ends_at: str
    remaining: str
    # Whether every slot must say how many places it has left. Where it may leave it
    # out, a slot without it has no limit the partner tells.
    remaining_required: bool = False


@dataclass(frozen=True)
class BookingFields:
    """The fields of a booking the hub asks for, and of the partner's answer."""

    reward: str
    slot: str | None  # None: the partner books no slots, and its API has no such field
    quantity: str
    member: str
    member_name: str
    reference: str
    booking_ref: str  # in the answer: the partner's reference for the booking


@dataclass(frozen=True)
class MovementFields:
    """Where a movements listing keeps its movements, and each movement its parts; and
    how the listing's query names the business date it asks for."""

    listing: str
    key: str
    ref: str
    points: str
    at: str
    # Whether every movement must say when it was made; where it may not, a movement
    # without it has no time.
    at_required: bool = True
    date: str = "date"
    date_format: str = "%Y-%m-%d"
