"""The hotel connector: guest points, rooms, room upgrades and services by date."""

from __future__ import annotations

import datetime as dt
from typing import Any

from connectors.base import BookingRequest, PartnerMovement, RewardOffer, SlotOffer
from connectors.partner import Dialect, Route, _when
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

    def parse_slots(self, body: Any) -> list[SlotOffer]:
        return [
            SlotOffer(
                ref=night["id"],
                starts_at=_when(night["checkIn"]),
                ends_at=_when(night["checkOut"]),
                remaining=night.get("left"),
            )
            for night in body["dates"]
        ]

    def booking_body(self, request: BookingRequest) -> dict[str, Any]:
        return {
            "offer": request.reward_ref,
            "availabilityId": request.slot_ref,
            "rooms": request.quantity,
            "guestId": request.account.external_ref if request.account else None,
            "guestName": request.member_name,
            "reference": request.reference,
        }

    def parse_booking(self, body: Any) -> str:
        return str(body["confirmation"])

    def movements_params(self, day: dt.date) -> dict[str, str]:
        return {"day": day.isoformat()}

    def parse_movements(self, body: Any) -> list[PartnerMovement]:
        return [
            PartnerMovement(
                key=str(e["requestKey"]),
                external_ref=str(e["guestId"]),
                points=int(e["amount"]) * (-1 if e["direction"] == "DEDUCT" else 1),
                at=_when(e["time"]),
            )
            for e in body["entries"]
        ]
