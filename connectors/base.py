"""The connector protocol: how the hub moves points and books rewards in any program.

A hosted program's connector works on the hub's own ledger inside the caller's
transaction (`local` is True). A partner's connector calls the partner over
signed HTTP; every call that moves points carries an idempotency key, so that a
call whose outcome was lost can be repeated safely.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from hub.enums import ConnectorKind, ErrorCode, RewardKind

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from hub.models import Program


class Purpose(StrEnum):
    CONVERSION = "CONVERSION"
    REDEMPTION = "REDEMPTION"
    REFUND = "REFUND"
    COMPENSATION = "COMPENSATION"


class Outcome(StrEnum):
    APPLIED = "APPLIED"  # the partner applied it (or had already, for this key)
    REJECTED = "REJECTED"  # the partner refused it and changed nothing
    UNKNOWN = "UNKNOWN"  # no answer: it may or may not have been applied


@dataclass(frozen=True)
class MemberAccount:
    member_id: str
    program_code: str
    external_ref: str


@dataclass(frozen=True)
class MemberRecord:
    """What a program's system says of a membership number: its balance and, when the
    system tells, the name it is held under."""

    points: int
    name: str | None = None


@dataclass(frozen=True)
class PointsCall:
    account: MemberAccount
    points: int
    idempotency_key: str
    purpose: Purpose
    reference: str
    memo: str | None = None
    # For a refund or reversal: the idempotency key of the call it undoes.
    undoes: str | None = None


UNSAID = "[the partner's words]"


def unsaid(message: str | None, said: str | None) -> str | None:
    """A message for the logs: the partner's own words (`said`) in it replaced, since they
    may name the member and the logs carry no names."""
    if message and said:
        return message.replace(said, UNSAID)
    return message


@dataclass(frozen=True)
class CallResult:
    outcome: Outcome
    partner_ref: str | None = None
    message: str | None = None
    code: ErrorCode | None = None
    # A reversal's answer: whether the partner voided the call it undoes (False: it never
    # got that call, and refuses it if it comes late). None for any other call.
    voided: bool | None = None
    # The partner's own reference for the movement, when `partner_ref` names it otherwise
    # (a partner's hold is named by the hub's key of its debit, which a release undoes).
    movement_ref: str | None = None
    # The partner's own words, when `message` carries them (a refusal): they may name the
    # member, so the hub shows them only to whoever may see the member (hub.sagas.failure_of).
    said: str | None = None

    @property
    def applied(self) -> bool:
        return self.outcome == Outcome.APPLIED


@dataclass(frozen=True)
class SlotOffer:
    ref: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    remaining: int | None


@dataclass(frozen=True)
class RewardTerms:
    """What whoever offers a reward says of it: a partner in its catalog (RewardOffer), a
    hosted merchant when it keeps its own (hub.mall.catalog.NewReward)."""

    ref: str
    kind: RewardKind
    title: str
    price: int
    description: str | None = None
    settlement_price: Decimal | None = None
    stock: int | None = None
    active: bool = True


@dataclass(frozen=True)
class RewardOffer(RewardTerms):
    slots: list[SlotOffer] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BookingRequest:
    reward_ref: str
    slot_ref: str | None
    quantity: int
    account: MemberAccount | None  # the member at the reward's merchant, when enrolled
    member_name: str
    idempotency_key: str
    reference: str


@dataclass(frozen=True)
class BookingResult:
    outcome: Outcome
    booking_ref: str | None = None
    message: str | None = None
    code: ErrorCode | None = None
    said: str | None = None  # as CallResult.said


@dataclass(frozen=True)
class PartnerMovement:
    """One points movement a partner recorded: the hub's Idempotency-Key of the call,
    the member's ref, and the signed points (negative: taken from the member)."""

    key: str
    external_ref: str
    points: int
    at: dt.datetime | None = None


@dataclass(frozen=True)
class EventBooking:
    booking_ref: str
    reference: str | None  # the hub's redemption id, when the partner kept it


@dataclass(frozen=True)
class PartnerEvent:
    """A partner's webhook, read: flight cancelled, booking confirmed, ..."""

    event_id: str
    type: str
    bookings: list[EventBooking] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    def stored(self) -> dict[str, Any]:
        """What the hub keeps of the event to act on it later (hub.partner_events)."""
        return {"bookings": [[b.booking_ref, b.reference] for b in self.bookings], "raw": self.raw}

    @classmethod
    def from_stored(cls, event_id: str, type_: str, data: dict[str, Any]) -> PartnerEvent:
        return cls(
            event_id=event_id,
            type=type_,
            bookings=[EventBooking(ref, reference) for ref, reference in data["bookings"]],
            raw=data["raw"],
        )


class Connector(Protocol):
    """What the hub can ask of any program's system."""

    kind: ConnectorKind
    local: bool

    async def balance(self, account: MemberAccount) -> int: ...

    async def lookup(self, external_ref: str) -> MemberRecord:
        """The member holding this membership number. Raises NotFound when the system does
        not know it (a definite answer), PartnerUnavailable when it did not answer."""
        ...

    async def debit(self, call: PointsCall) -> CallResult: ...

    async def credit(self, call: PointsCall) -> CallResult: ...

    async def reverse(self, call: PointsCall) -> CallResult:
        """Undo an applied debit (call.undoes names it); applying twice changes nothing."""
        ...

    async def hold(self, call: PointsCall) -> CallResult: ...

    async def capture(self, call: PointsCall) -> CallResult: ...

    async def release(self, call: PointsCall) -> CallResult: ...

    async def list_rewards(self) -> list[RewardOffer]: ...

    async def list_slots(self, reward_ref: str, date: dt.date | None) -> list[SlotOffer]: ...

    async def book(self, request: BookingRequest) -> BookingResult: ...

    async def cancel(self, booking_ref: str, reason: str, idempotency_key: str) -> CallResult: ...

    async def health(self) -> bool: ...

    async def movements(self, day: dt.date) -> list[PartnerMovement]:
        """The partner's points movements of a business date; PartnerUnavailable if none."""
        ...


class ConnectorFactory(Protocol):
    """Finds the connector of a program; hosted ones work in the given session."""

    def for_program(self, program: Program, session: AsyncSession | None, actor: str) -> Connector:
        """The program's connector; a hosted one works in `session` (so needs one), a
        partner's ignores it. `actor` is who its calls are made for."""
        ...

    def is_local(self, program: Program) -> bool:
        """Whether the program's connector works inside the hub's transaction."""
        ...
