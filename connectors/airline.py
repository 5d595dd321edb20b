"""The airline connector: miles, award seats by route and date, bookings with a PNR."""

from __future__ import annotations

from typing import Any

from connectors.base import RewardOffer
from connectors.fields import BookingFields, MovementFields, SlotFields
from connectors.partner import Dialect, Route, _decimal
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
    slot_fields = SlotFields(
        "seats",
        ref="seatId",
        starts_at="departure",
        ends_at="arrival",
        remaining="available",
        remaining_required=True,
    )
    booking_fields = BookingFields(
        reward="awardId",
        slot="seatId",
        quantity="passengers",
        member="ffp",
        member_name="passengerName",
        reference="reference",
        booking_ref="pnr",
    )
    movement_fields = MovementFields(
        "transactions", key="idempotencyKey", ref="ffp", points="miles", at="postedAt"
    )

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
