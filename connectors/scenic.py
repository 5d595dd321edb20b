"""The scenic-spot connector: points, and tickets by entry time slot.

A ticket bought with points offers exactly the entry windows of a paid ticket:
the partner sells both channels from one inventory of time slots, and the
connector asks for the points channel's windows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from connectors.base import RewardOffer
from connectors.fields import BookingFields, MovementFields, SlotFields
from connectors.partner import Dialect, Route
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
    slot_fields = SlotFields(
        "timeslots",
        ref="id",
        starts_at="enter_from",
        ends_at="enter_until",
        remaining="capacity_left",
    )
    booking_fields = BookingFields(
        reward="ticketId",
        slot="timeslotId",
        quantity="quantity",
        member="visitor",
        member_name="visitorName",
        reference="ref",
        booking_ref="orderNo",
    )
    movement_fields = MovementFields(
        "list",
        key="key",
        ref="account",
        points="pointsDelta",
        at="createTime",
        date="bizDate",
        date_format="%Y%m%d",
    )

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

    def movement_rows(self, body: Any) -> Any:
        """Every answer of West Lake's comes in an envelope: {"code": 0, "data": ...}."""
        return body["data"][self.movement_fields.listing]

    def movement_at(self, row: Any) -> dt.datetime:
        """A movement's time is milliseconds since the epoch."""
        return dt.datetime.fromtimestamp(int(row[self.movement_fields.at]) / 1000, tz=dt.UTC)
