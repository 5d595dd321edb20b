"""The restaurant connector: member points, set meals and vouchers."""

from __future__ import annotations

from typing import Any

from connectors.base import RewardOffer
from connectors.fields import BookingFields, MovementFields
from connectors.partner import Dialect, Route
from hub.enums import ConnectorKind, RewardKind


class RestaurantDialect(Dialect):
    kind = ConnectorKind.RESTAURANT
    balance = Route("GET", "/members/{ref}")
    balance_field = "balance"
    debit = Route("POST", "/members/{ref}/spend")
    credit = Route("POST", "/members/{ref}/earn")
    reference_field = "note"
    reverse = Route("POST", "/refunds")
    reverse_field = "key"
    rewards = Route("GET", "/menu")
    slots = None  # meals and vouchers have no time slots
    book = Route("POST", "/orders")
    cancel = Route("POST", "/orders/{booking}/cancel")
    health = Route("GET", "/status")
    movements = Route("GET", "/points/history")
    booking_fields = BookingFields(
        reward="sku",
        slot=None,
        quantity="qty",
        member="member",
        member_name="memberName",
        reference="note",
        booking_ref="voucherCode",
    )
    movement_fields = MovementFields("history", key="key", ref="member", points="change", at="when")

    def parse_rewards(self, body: Any) -> list[RewardOffer]:
        return [
            RewardOffer(
                ref=item["sku"],
                kind=RewardKind.VOUCHER if item["category"] == "VOUCHER" else RewardKind.MEAL,
                title=item["name"],
                description=item.get("desc"),
                price=int(item["points"]),
                stock=item.get("left"),
            )
            for item in body["items"]
        ]
