"""The airline connector: miles, award seats by route and date, bookings with a PNR."""

from __future__ import annotations

import datetime as dt
from typing import Any

from connectors.base import BookingRequest, PartnerMovement, RewardOffer, SlotOffer
from connectors.partner import Dialect, Route, _decimal, _when
from hub.enums import ConnectorKind, RewardKind


class AirlineDialect(Dialect):
    kind = ConnectorKind.AIRLINE
    balance = Route("GET", "/v1/members/{ref}/miles")
    balance_field = "miles"
    debit = Route("POST", "/v1/members/{ref}/miles/redeem")
    credit = Route("POST", "/v1/members/{ref}/miles/accrue")
    amount_field = "miles"
    reverse = Route("POST", "/v1/miles/void")
    rewards = Route("GET", "/v1/awards")
    slots = Route("GET", "/v1/awards/{reward}/seats")
    book = Route("POST", "/v1/bookings")
    cancel = Route("POST", "/v1/bookings/{booking}/cancel")
    health = Route("GET", "/v1/health")
    movements = Route("GET", "/v1/miles/transactions")

    def parse_rewards(self, body: Any) -> list[RewardOffer]:
        offers = []
        for award in body["awards"]:
            lounge = award.get("type") == "LOUNGE"
            title = (
                award["name"]
                if lounge
                else f"Award flight {award['route']} ({award['cabin'].lower()})"
            )
            offers.append(
                RewardOffer(
                    ref=award["awardId"],
                    kind=RewardKind.LOUNGE_ACCESS if lounge else RewardKind.AWARD_FLIGHT,
                    title=title,
                    description=award.get("description"),
                    price=int(award["miles"]),
                    settlement_price=_decimal(award.get("cashValue")),
                    stock=None,
                    extra={"route": award.get("route")},
                )
            )
        return offers

    def parse_slots(self, body: Any) -> list[SlotOffer]:
        return [
            SlotOffer(
                ref=seat["seatId"],
                starts_at=_when(seat["departure"]),
                ends_at=_when(seat["arrival"]),
                remaining=int(seat["available"]),
            )
            for seat in body["seats"]
        ]

    def slots_params(self, date: dt.date | None) -> dict[str, str]:
        return {"date": date.isoformat()} if date else {}

    def booking_body(self, request: BookingRequest) -> dict[str, Any]:
        return {
            "awardId": request.reward_ref,
            "seatId": request.slot_ref,
            "passengers": request.quantity,
            "ffp": request.account.external_ref if request.account else None,
            "passengerName": request.member_name,
            "reference": request.reference,
        }

    def parse_booking(self, body: Any) -> str:
        return str(body["pnr"])

    def parse_movements(self, body: Any) -> list[PartnerMovement]:
        return [
            PartnerMovement(
                key=str(t["idempotencyKey"]),
                external_ref=str(t["ffp"]),
                points=int(t["miles"]),
                at=_when(t["postedAt"]),
            )
            for t in body["transactions"]
        ]
