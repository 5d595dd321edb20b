"""A partner's connector: the protocol mapped onto one partner API over PartnerClient.

Each vertical (airline, hotel, restaurant, scenic) and the generic HTTP partner
is a Dialect: which path does what, and how the partner's answers read. Partners
here have no holds, so a hold is a debit, a capture changes nothing, and a
release reverses the debit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from connectors.base import (
    BookingRequest,
    BookingResult,
    CallResult,
    MemberAccount,
    MemberRecord,
    Outcome,
    PartnerMovement,
    PointsCall,
    RewardOffer,
    SlotOffer,
)
from connectors.fields import BookingFields, MovementFields, SlotFields
from connectors.http import PartnerClient, Reply
from hub.enums import ConnectorKind, ErrorCode, RewardKind
from hub.errors import DomainError, NotFound, PartnerRejected, PartnerUnavailable


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

    def parse_booking(self, body: Any) -> str:
        return str(body[self.booking_fields.booking_ref])

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


def _result(reply: Reply, ref: Callable[[Any], str | None] | None = None) -> CallResult:
    partner_ref = None
    if reply.applied and ref is not None and isinstance(reply.body, dict):
        partner_ref = ref(reply.body)
    return CallResult(
        reply.outcome, partner_ref=partner_ref, message=reply.message or None, code=reply.code
    )


# A day's movements is a batch read of thousands of rows, not a member's debit: it gets
# the time such a listing takes, not the timeout tuned for calls a member waits on.
MOVEMENTS_WAIT_SECONDS = 30.0


class PartnerConnector:
    """The protocol over a partner's HTTP API, spoken in its dialect."""

    local = False

    def __init__(self, dialect: Dialect, client: PartnerClient) -> None:
        self.dialect = dialect
        self.client = client
        self.kind = dialect.kind

    async def _points(self, route: Route, call: PointsCall, operation: str) -> CallResult:
        reply = await self.client.call(
            operation,
            route.method,
            route.to(ref=call.account.external_ref),
            body=self.dialect.points_body(call),
            idempotency_key=call.idempotency_key,
        )
        return _result(reply, lambda b: b.get("transactionId"))

    def _failure(self, reply: Reply, subject: str) -> DomainError:
        """Why a read gave nothing: the partner's definite refusal (it answered 4xx), or no
        answer at all. A refusal is never reported as an outage."""
        merchant = self.client.merchant_id
        if reply.outcome == Outcome.REJECTED and reply.status is not None:
            said = f" ({reply.detail})" if reply.detail else ""
            if reply.code == ErrorCode.NOT_FOUND:
                return NotFound(
                    f"{merchant} does not know {subject}: it answered {reply.status}{said}. "
                    f"That is {merchant}'s refusal, not an outage."
                )
            return PartnerRejected(
                f"{merchant} refused to give {subject}: it answered {reply.status}{said}. "
                f"That is {merchant}'s refusal, not an outage."
            )
        return PartnerUnavailable(reply.message or f"{merchant} did not answer for {subject}.")

    async def _member(self, external_ref: str) -> Any:
        route = self.dialect.balance
        reply = await self.client.call(
            "balance", route.method, route.to(ref=external_ref), wait_seconds=2.0
        )
        if not reply.applied:
            raise self._failure(reply, f"membership number {external_ref!r}")
        return reply.body

    async def balance(self, account: MemberAccount) -> int:
        body = await self._member(account.external_ref)
        return int(body[self.dialect.balance_field])

    async def lookup(self, external_ref: str) -> MemberRecord:
        body = await self._member(external_ref)
        name = body.get(self.dialect.name_field)
        return MemberRecord(
            points=int(body[self.dialect.balance_field]),
            name=name.strip() if isinstance(name, str) and name.strip() else None,
        )

    async def debit(self, call: PointsCall) -> CallResult:
        return await self._points(self.dialect.debit, call, "debit")

    async def credit(self, call: PointsCall) -> CallResult:
        return await self._points(self.dialect.credit, call, "credit")

    async def reverse(self, call: PointsCall) -> CallResult:
        route = self.dialect.reverse
        reply = await self.client.call(
            "reverse",
            route.method,
            route.path,
            body={self.dialect.reverse_field: call.undoes, "reference": call.reference},
            idempotency_key=call.idempotency_key,
        )
        return _result(reply, lambda b: b.get("transactionId"))

    async def hold(self, call: PointsCall) -> CallResult:
        result = await self.debit(call)
        if result.applied:  # the hold's reference is the debit's key, which release undoes
            return CallResult(Outcome.APPLIED, partner_ref=call.idempotency_key)
        return result

    async def capture(self, call: PointsCall) -> CallResult:
        return CallResult(Outcome.APPLIED, partner_ref=call.undoes)

    async def release(self, call: PointsCall) -> CallResult:
        return await self.reverse(call)

    async def list_rewards(self) -> list[RewardOffer]:
        route = self.dialect.rewards
        reply = await self.client.call("rewards", route.method, route.path)
        if not reply.applied:
            raise self._failure(reply, "its catalog")
        return self.dialect.parse_rewards(reply.body)

    async def list_slots(self, reward_ref: str, date: dt.date | None) -> list[SlotOffer]:
        route = self.dialect.slots
        if route is None:
            return []
        reply = await self.client.call(
            "slots",
            route.method,
            route.to(reward=reward_ref),
            params=self.dialect.slots_params(date),
        )
        if not reply.applied:
            raise self._failure(reply, f"the slots of {reward_ref!r}")
        return self.dialect.parse_slots(reply.body)

    async def book(self, request: BookingRequest) -> BookingResult:
        route = self.dialect.book
        reply = await self.client.call(
            "book",
            route.method,
            route.path,
            body=self.dialect.booking_body(request),
            idempotency_key=request.idempotency_key,
        )
        if reply.applied:
            return BookingResult(
                Outcome.APPLIED, booking_ref=self.dialect.parse_booking(reply.body)
            )
        return BookingResult(reply.outcome, message=reply.message or None, code=reply.code)

    async def cancel(self, booking_ref: str, reason: str, idempotency_key: str) -> CallResult:
        route = self.dialect.cancel
        reply = await self.client.call(
            "cancel",
            route.method,
            route.to(booking=booking_ref),
            body={"reason": reason},
            idempotency_key=idempotency_key,
        )
        return _result(reply, lambda _: booking_ref)

    async def movements(self, day: dt.date) -> list[PartnerMovement]:
        route = self.dialect.movements
        reply = await self.client.call(
            "movements",
            route.method,
            route.path,
            params=self.dialect.movements_params(day),
            wait_seconds=max(MOVEMENTS_WAIT_SECONDS, self.client.config.timeout_seconds),
        )
        if not reply.applied:
            raise PartnerUnavailable(reply.message or "The partner's movements are not available.")
        try:
            return self.dialect.parse_movements(reply.body)
        except (KeyError, TypeError, ValueError) as exc:
            raise PartnerUnavailable(
                f"The partner's movements could not be read ({type(exc).__name__})."
            ) from exc

    async def health(self) -> bool:
        route = self.dialect.health
        reply = await self.client.call("health", route.method, route.path, wait_seconds=2.0)
        return reply.applied
