"""Each sandbox partner's API as the partner states it: its paths and its words.

Written here again, not taken from the hub's dialects (connectors/dialects.py), so
that the tests check each dialect against an independent statement of its partner's
API. endpoints.api makes the calls every partner answers alike from these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Booking:
    """A booking's fields in the request, what the partner keeps of it (its name for
    each: the request's field), and the field and prefix of the reference it answers."""

    reward: str
    slot: str | None  # None: the partner books no slots
    quantity: str
    keeps: dict[str, str]
    ref_field: str
    ref_prefix: str


@dataclass(frozen=True)
class Api:
    """Where each call goes (reads GET, the rest POST) and the fields it reads and
    answers. A path's parameter is `{ref}` (a member), `{reward}` or `{booking}`."""

    balance: str
    debit: str
    credit: str
    reverse: str
    rewards: str
    slots: str | None  # None: the partner has no slots
    book: str
    cancel: str
    movements: str
    health: str
    balance_field: str
    amount_field: str
    reference_field: str
    reverse_field: str
    booking: Booking | None  # None: the vertical books its own way
    health_answer: dict[str, Any] = field(default_factory=dict)
    movements_date: str = "date"  # the query's name for the business date, and its format
    movements_date_format: str = "%Y-%m-%d"


GENERIC = Api(
    balance="/points/{ref}",
    debit="/points/{ref}/debit",
    credit="/points/{ref}/credit",
    reverse="/points/reversals",
    rewards="/rewards",
    slots="/rewards/{reward}/slots",
    book="/bookings",
    cancel="/bookings/{booking}/cancel",
    movements="/movements",
    health="/health",
    balance_field="balance",
    amount_field="points",
    reference_field="reference",
    reverse_field="originalKey",
    booking=Booking(
        reward="rewardRef",
        slot="slotRef",
        quantity="quantity",
        keeps={"member": "memberRef", "reference": "reference"},
        ref_field="bookingRef",
        ref_prefix="B",
    ),
    health_answer={"status": "ok"},
)

AIRLINE = Api(
    balance="/v1/members/{ref}/miles",
    debit="/v1/members/{ref}/miles/redeem",
    credit="/v1/members/{ref}/miles/accrue",
    reverse="/v1/miles/void",
    rewards="/v1/awards",
    slots="/v1/awards/{reward}/seats",
    book="/v1/bookings",
    cancel="/v1/bookings/{booking}/cancel",
    movements="/v1/miles/transactions",
    health="/v1/health",
    balance_field="miles",
    amount_field="miles",
    reference_field="reference",
    reverse_field="originalKey",
    booking=None,  # a lounge visit books no seat; a flight's booking keeps its flight
    health_answer={"status": "ok"},
)

HOTEL = Api(
    balance="/api/guests/{ref}/points",
    debit="/api/guests/{ref}/points/deduct",
    credit="/api/guests/{ref}/points/add",
    reverse="/api/points/reversals",
    rewards="/api/offers",
    slots="/api/offers/{reward}/availability",
    book="/api/reservations",
    cancel="/api/reservations/{booking}/cancel",
    movements="/api/points/ledger",
    health="/api/ping",
    balance_field="points",
    amount_field="amount",
    reference_field="reference",
    reverse_field="key",
    booking=Booking(
        reward="offer",
        slot="availabilityId",
        quantity="rooms",
        keeps={"guest": "guestId", "reference": "reference"},
        ref_field="confirmation",
        ref_prefix="LTS-",
    ),
    health_answer={"pong": True},
    movements_date="day",
)

RESTAURANT = Api(
    balance="/members/{ref}",
    debit="/members/{ref}/spend",
    credit="/members/{ref}/earn",
    reverse="/refunds",
    rewards="/menu",
    slots=None,
    book="/orders",
    cancel="/orders/{booking}/cancel",
    movements="/points/history",
    health="/status",
    balance_field="balance",
    amount_field="points",
    reference_field="note",
    reverse_field="key",
    booking=Booking(
        reward="sku",
        slot=None,
        quantity="qty",
        keeps={"member": "member", "note": "note"},
        ref_field="voucherCode",
        ref_prefix="JV-",
    ),
    health_answer={"ok": True},
)

SCENIC = Api(
    balance="/accounts/{ref}",
    debit="/accounts/{ref}/deduct",
    credit="/accounts/{ref}/add",
    reverse="/transactions/revert",
    rewards="/tickets",
    slots="/tickets/{reward}/timeslots",
    book="/orders",
    cancel="/orders/{booking}/refund",
    movements="/transactions",
    health="/healthz",
    balance_field="points",
    amount_field="points",
    reference_field="orderNo",
    reverse_field="key",
    booking=Booking(
        reward="ticketId",
        slot="timeslotId",
        quantity="quantity",
        keeps={"visitor": "visitor", "ref": "ref"},
        ref_field="orderNo",
        ref_prefix="WL",
    ),
    health_answer={"status": "up"},
    movements_date="bizDate",
    movements_date_format="%Y%m%d",
)
