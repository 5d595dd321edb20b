"""The scenic-spot connector: points, and tickets by entry time slot.

A ticket bought with points offers exactly the entry windows of a paid ticket:
the partner sells both channels from one inventory of time slots, and the
connector asks for the points channel's windows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from connectors.base import BookingRequest, PartnerMovement, RewardOffer, SlotOffer
from connectors.partner import Dialect, Route, _when
from hub.enums import ConnectorKind, RewardKind


class ScenicDialect(Dialect):
    kind = ConnectorKind.SCENIC
    balance = Route("GET", "/accounts/{ref}")
    balance_field = "points"
    debit = Route("POST", "/accounts/{ref}/deduct")
    credit = Route("POST", "/accounts/{ref}/add")
    reference_field = "orderNo"
    reverse = Route("POST", "/transactions/revert")
    reverse_field = "key"
    rewards = Route("GET", "/tickets")
    slots = Route("GET", "/tickets/{reward}/timeslots")
    book = Route("POST", "/orders")
    cancel = Route("POST", "/orders/{booking}/refund")
    health = Route("GET", "/healthz")
    movements = Route("GET", "/transactions")

    def parse_rewards(self, body: Any) -> list[RewardOffer]:
        return [
            RewardOffer(
                ref=ticket["id"],
                kind=RewardKind.ATTRACTION_TICKET,
                title=ticket["name"],
                description=ticket.get("desc"),
                price=int(ticket["points"]),
            )
            for ticket in body["tickets"]
        ]

    def slots_params(self, date: Any) -> dict[str, str]:
        params = {"channel": "points"}
        if date:
            params["date"] = date.isoformat()
        return params

    def parse_slots(self, body: Any) -> list[SlotOffer]:
        return [
            SlotOffer(
                ref=slot["id"],
                starts_at=_when(slot["enter_from"]),
                ends_at=_when(slot["enter_until"]),
                remaining=slot.get("capacity_left"),
            )
            for slot in body["timeslots"]
        ]

    def booking_body(self, request: BookingRequest) -> dict[str, Any]:
        return {
            "ticketId": request.reward_ref,
            "timeslotId": request.slot_ref,
            "quantity": request.quantity,
            "visitor": request.account.external_ref if request.account else None,
            "visitorName": request.member_name,
            "ref": request.reference,
        }

    def parse_booking(self, body: Any) -> str:
        return str(body["orderNo"])

    def movements_params(self, day: dt.date) -> dict[str, str]:
        return {"bizDate": day.strftime("%Y%m%d")}

    def parse_movements(self, body: Any) -> list[PartnerMovement]:
        return [
            PartnerMovement(
                key=str(row["key"]),
                external_ref=str(row["account"]),
                points=int(row["pointsDelta"]),
                at=dt.datetime.fromtimestamp(int(row["createTime"]) / 1000, tz=dt.UTC),
            )
            for row in body["data"]["list"]
        ]
