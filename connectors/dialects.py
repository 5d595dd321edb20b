"""The partner APIs the hub speaks: each one's paths, its names for things, and what it
reads its own way.

A Dialect is one partner API: which path does what (a Route each), its field names
(connectors/fields.py), and, as methods, whatever it does differently rather than
just names differently. `Dialect` itself is the generic hub partner API
(connectors/README.md); each vertical (airline, hotel, restaurant, scenic spot)
overrides what differs. connectors.partner speaks any of them, and each sandbox
partner (connectors/sandbox/) plays one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from connectors.base import BookingRequest, PartnerMovement, PointsCall, RewardOffer, SlotOffer
from connectors.fields import BookingFields, MovementFields, SlotFields
from hub.enums import ConnectorKind, RewardKind


@dataclass(frozen=True)
class Route:
    method: str
    path: str

    def to(self, **values: str) -> str:
        """The path with each value as exactly one segment: '/', '?', '#' and '%' are
        quoted, and '.' or '..' cannot climb out of it."""
        return self.path.format(**{name: segment(value) for name, value in values.items()})


def segment(value: str) -> str:
    quoted = quote(value, safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


class Dialect:
    """The generic hub partner API (connectors/README.md); verticals override what differs."""

    kind = ConnectorKind.HTTP
    balance = Route("GET", "/points/{ref}")
    balance_field = "balance"
    name_field = "name"  # optional in the balance answer: the name the number is held under
    debit = Route("POST", "/points/{ref}/debit")
    credit = Route("POST", "/points/{ref}/credit")
    amount_field = "points"
    reference_field = "reference"
    reverse = Route("POST", "/points/reversals")
    reverse_field = "originalKey"
    rewards = Route("GET", "/rewards")
    slots: Route | None = Route("GET", "/rewards/{reward}/slots")
    book = Route("POST", "/bookings")
    cancel = Route("POST", "/bookings/{booking}/cancel")
    health = Route("GET", "/health")
    movements = Route("GET", "/movements")
    slot_fields = SlotFields(
        "slots", ref="ref", starts_at="startsAt", ends_at="endsAt", remaining="remaining"
    )
    booking_fields = BookingFields(
        reward="rewardRef",
        slot="slotRef",
        quantity="quantity",
        member="memberRef",
        member_name="memberName",
        reference="reference",
        booking_ref="bookingRef",
    )
    movement_fields = MovementFields(
        "movements", key="key", ref="ref", points="points", at="at", at_required=False
    )

    def points_body(self, call: PointsCall) -> dict[str, Any]:
        return {
            self.amount_field: call.points,
            self.reference_field: call.reference,
            "memo": call.memo,
        }

    def parse_rewards(self, body: Any) -> list[RewardOffer]:
        return [
            RewardOffer(
                ref=str(r["ref"]),
                kind=RewardKind(str(r["kind"])),  # ValueError: a malformed reply
                title=str(r["title"]),
                description=r.get("description"),
                price=int(r["price"]),
                settlement_price=_decimal(r.get("settlementPrice")),
                stock=r.get("stock"),
                active=bool(r.get("active", True)),
            )
            for r in body["rewards"]
        ]

    def slots_params(self, date: dt.date | None) -> dict[str, str]:
        return {"date": date.isoformat()} if date else {}

    def parse_slots(self, body: Any) -> list[SlotOffer]:
        f = self.slot_fields
        return [
            SlotOffer(
                ref=str(s[f.ref]),
                starts_at=_when(s[f.starts_at]),
                ends_at=_when(s[f.ends_at]),
                remaining=int(s[f.remaining]) if f.remaining_required else s.get(f.remaining),
            )
            for s in body[f.listing]
        ]

    def booking_body(self, request: BookingRequest) -> dict[str, Any]:
        f = self.booking_fields
        body: dict[str, Any] = {f.reward: request.reward_ref}
        if f.slot is not None:
            body[f.slot] = request.slot_ref
        body[f.quantity] = request.quantity
        body[f.member] = request.account.external_ref if request.account else None
        body[f.member_name] = request.member_name
        body[f.reference] = request.reference
        return body

    def parse_booking(self, body: Any) -> str | None:
        """The partner's reference for the booking it made; None when its answer has none
        (then it does not confirm the booking)."""
        found = body.get(self.booking_fields.booking_ref) if isinstance(body, dict) else None
        if isinstance(found, bool) or not isinstance(found, str | int) or not str(found).strip():
            return None
        return str(found)

    def movements_params(self, day: dt.date) -> dict[str, str]:
        f = self.movement_fields
        return {f.date: day.strftime(f.date_format)}

    def parse_movements(self, body: Any) -> list[PartnerMovement]:
        f = self.movement_fields
        return [
            PartnerMovement(
                key=str(m[f.key]),
                external_ref=str(m[f.ref]),
                points=self.movement_points(m),
                at=self.movement_at(m),
            )
            for m in self.movement_rows(body)
        ]

    def movement_rows(self, body: Any) -> Any:
        """The movements of a listing's answer; a partner that wraps them says where."""
        return body[self.movement_fields.listing]

    def movement_points(self, row: Any) -> int:
        """A movement's signed points; a partner that sends a sign apart says how."""
        return int(row[self.movement_fields.points])

    def movement_at(self, row: Any) -> dt.datetime | None:
        """When a movement was made; a partner that sends no ISO time says how to read it."""
        f = self.movement_fields
        return _when(row[f.at]) if f.at_required or row.get(f.at) else None


def _decimal(value: Any) -> Decimal | None:
    """A partner's money as it sent it; what is not a number reads as NaN, which the hub's
    checks refuse for that one reward instead of failing the whole catalog."""
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal("NaN")


def _when(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class AirlineDialect(Dialect):
    """Miles, award seats by route and date, bookings with a PNR."""

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


KINDS = {
    "ROOM": RewardKind.HOTEL_NIGHT,
    "UPGRADE": RewardKind.ROOM_UPGRADE,
    "SERVICE": RewardKind.HOTEL_SERVICE,
}


class HotelDialect(Dialect):
    """Guest points; rooms, room upgrades and services by date."""

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


class RestaurantDialect(Dialect):
    """Member points, set meals and vouchers."""

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


class ScenicDialect(Dialect):
    """Points, and tickets by entry time slot. A ticket bought with points offers exactly
    the entry windows of a paid ticket: the partner sells both channels from one
    inventory of time slots, and the connector asks for the points channel's windows."""

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


DIALECTS: dict[str, type[Dialect]] = {
    ConnectorKind.HTTP: Dialect,
    ConnectorKind.AIRLINE: AirlineDialect,
    ConnectorKind.HOTEL: HotelDialect,
    ConnectorKind.RESTAURANT: RestaurantDialect,
    ConnectorKind.SCENIC: ScenicDialect,
}
