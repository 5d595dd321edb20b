"""The hotel connector: guest points, rooms, room upgrades and services by date."""

from __future__ import annotations

from typing import Any

from connectors.base import RewardOffer
from connectors.fields import BookingFields, MovementFields, SlotFields
from connectors.partner import Dialect, Route
from hub.enums import ConnectorKind, RewardKind

KINDS = {
    "ROOM": RewardKind.HOTEL_NIGHT,
    "UPGRADE": RewardKind.ROOM_UPGRADE,
    "SERVICE": RewardKind.HOTEL_SERVICE,
}


class HotelDialect(Dialect):
    kind = ConnectorKind.HOTEL
    balance = Route("GET", "/api/guests/{ref}/points")
    balance_field = "points"
    debit = Route("POST", "/api/guests/{ref}/points/deduct")
    credit = Route("POST", "/api/guests/{ref}/points/add")
    amount_field = "amount"
    reverse = Route("POST", "/api/points/reversals")
    reverse_field = "key"
    rewards = Route("GET", "/api/offers")
    slots = Route("GET", "/api/offers/{reward}/availability")
    book = Route("POST", "/api/reservations")
    cancel = Route("POST", "/api/reservations/{booking}/cancel")
    health = Route("GET", "/api/ping")
    movements = Route("GET", "/api/points/ledger")
    slot_fields = SlotFields(
        "dates", ref="id", starts_at="checkIn", ends_at="checkOut", remaining="left"
    )
    booking_fields = BookingFields(
        reward="offer",
        slot="availabilityId",
        quantity="rooms",
        member="guestId",
        member_name="guestName",
        reference="reference",
        booking_ref="confirmation",
    )
    movement_fields = MovementFields(
        "entries", key="requestKey", ref="guestId", points="amount", at="time", date="day"
    )

    def parse_rewards(self, body: Any) -> list[RewardOffer]:
        return [
            RewardOffer(
                ref=offer["code"],
                kind=KINDS[offer["type"]],
                title=offer["name"],
                description=offer.get("details"),
                price=int(offer["points"]),
                stock=offer.get("inventory"),
            )
            for offer in body["offers"]
        ]

    def movement_points(self, row: Any) -> int:
        """The ledger sends an amount and its direction apart."""
        return super().movement_points(row) * (-1 if row["direction"] == "DEDUCT" else 1)
