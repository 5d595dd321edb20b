"""The restaurant connector: member points, set meals and vouchers."""

from __future__ import annotations

from typing import Any

from connectors.base import BookingRequest, PartnerMovement, RewardOffer
from connectors.partner import Dialect, Route, _when
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

    def booking_body(self, request: BookingRequest) -> dict[str, Any]:
        return {
            "sku": request.reward_ref,
            "qty": request.quantity,
            "member": request.account.external_ref if request.account else None,
            "memberName": request.member_name,
            "note": request.reference,
        }

    def parse_booking(self, body: Any) -> str:
        return str(body["voucherCode"])

    def parse_movements(self, body: Any) -> list[PartnerMovement]:
        return [
            PartnerMovement(
                key=str(h["key"]),
                external_ref=str(h["member"]),
                points=int(h["change"]),
                at=_when(h["when"]),
            )
            for h in body["history"]
        ]
