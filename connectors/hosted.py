"""The hosted connector: a program whose balances live in the hub's own ledger.

It works inside the caller's transaction, so a conversion between hosted
programs is one database transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from sqlalchemy import bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import (
    BookingRequest,
    BookingResult,
    CallResult,
    MemberAccount,
    MemberRecord,
    Outcome,
    PartnerMovement,
    PointsCall,
    Purpose,
    RewardOffer,
    SlotOffer,
)
from hub.config import Settings
from hub.db import Prepared, utcnow
from hub.enums import AccountKind, ConnectorKind, EntryKind, ErrorCode, HoldStatus
from hub.errors import BalanceLimit, InsufficientPoints, InvalidState, NotFound
from hub.ids import new_id
from hub.ledger import Movement, Points
from hub.ledger.points import TAKEN_COLUMNS, LotTaken, lots_taken
from hub.ledger.queries import open_lots_by_account, spendable
from hub.members import account_of
from hub.models import Account, Entry, Hold, Lot, LotUse, Member, Program
from hub.models.base import table_of
from hub.models.ledger import HUB_CALL_KINDS

DEBITS = {
    Purpose.CONVERSION: (EntryKind.CONVERSION_OUT, AccountKind.EXCHANGE),
    Purpose.REDEMPTION: (EntryKind.REDEMPTION, AccountKind.REDEEMED),
}
CREDITS = {
    Purpose.CONVERSION: (EntryKind.CONVERSION_IN, AccountKind.EXCHANGE),
    Purpose.COMPENSATION: (EntryKind.COMPENSATION, AccountKind.EXCHANGE),
    Purpose.REFUND: (EntryKind.REFUND, AccountKind.REDEEMED),
}


class _Taken(NamedTuple):
    """An entry a later call undoes: its id and kind, and what it took from each lot."""

    id: int
    kind: str
    lots: list[LotTaken]


_ENTRIES = table_of(Entry)
_LOT_USES = table_of(LotUse)
_LOTS = table_of(Lot)
# The entry with what it took from each lot (a restore gives them back): one read.
_CALL_ENTRY = Prepared(
    select(_ENTRIES.c.id, _ENTRIES.c.kind, *TAKEN_COLUMNS)
    .select_from(
        _ENTRIES.outerjoin(_LOT_USES, _LOT_USES.c.entry_id == _ENTRIES.c.id).outerjoin(
            _LOTS, _LOTS.c.id == _LOT_USES.c.lot_id
        )
    )
    .where(
        _ENTRIES.c.program_code == bindparam("program", type_=_ENTRIES.c.program_code.type),
        _ENTRIES.c.idempotency_key == bindparam("key", type_=_ENTRIES.c.idempotency_key.type),
        or_(*(_ENTRIES.c.kind == kind for kind in HUB_CALL_KINDS)),
    )
    .group_by(_ENTRIES.c.id, _ENTRIES.c.kind, _LOT_USES.c.lot_id, _LOTS.c.expires_at)
    .order_by(_LOT_USES.c.lot_id),
    autoflush=True,
)


class HostedConnector:
    kind = ConnectorKind.HOSTED
    local = True

    def __init__(
        self, session: AsyncSession, program: Program, settings: Settings, actor: str
    ) -> None:
        self.session = session
        self.program = program
        self.settings = settings
        self.actor = actor
        self.points = Points(session)

    def _movement(self, call: PointsCall) -> Movement:
        now = utcnow()
        return Movement(
            actor=self.actor,
            business_date=self.settings.business_date(now),
            occurred_at=now,
            reference=call.reference,
            memo=call.memo,
            idempotency_key=call.idempotency_key,
        )

    async def _account(self, ref: MemberAccount) -> Account:
        account = await account_of(self.session, ref.member_id, self.program.code)
        if account is None:
            raise NotFound(f"Member {ref.member_id} is not enrolled in {self.program.code}.")
        return account

    async def _entry_for_key(self, key: str | None) -> _Taken:
        """The entry an earlier hub call wrote here under `key`: one at most (a unique
        index), and never an entry a client's own idempotency key is on."""
        rows = await _CALL_ENTRY.all(self.session, {"program": self.program.code, "key": key})
        if not rows:
            raise NotFound(f"No entry in {self.program.code} for call {key!r}.")
        return _Taken(int(rows[0]["id"]), str(rows[0]["kind"]), lots_taken(rows))

    async def balance(self, account: MemberAccount) -> int:
        row = await self._account(account)
        lots = (await open_lots_by_account(self.session, [row.id]))[row.id]
        return spendable(row.balance, lots, utcnow())

    async def lookup(self, external_ref: str) -> MemberRecord:
        found = (
            await self.session.execute(
                select(Account, Member.display_name)
                .join(Member, Member.id == Account.member_id)
                .where(
                    Account.program_code == self.program.code,
                    Account.external_ref == external_ref,
                )
            )
        ).first()
        if found is None:
            raise NotFound(f"{self.program.code} has no membership number {external_ref!r}.")
        account, name = found
        lots = (await open_lots_by_account(self.session, [account.id]))[account.id]
        return MemberRecord(points=spendable(account.balance, lots, utcnow()), name=name)

    async def debit(self, call: PointsCall) -> CallResult:
        kind, sink = DEBITS[call.purpose]
        account = await self._account(call.account)
        try:
            entry = await self.points.debit(account, call.points, kind, sink, self._movement(call))
        except InsufficientPoints as exc:
            return CallResult(
                Outcome.REJECTED, message=exc.message, code=ErrorCode.INSUFFICIENT_POINTS
            )
        return CallResult(Outcome.APPLIED, partner_ref=str(entry.id))

    async def credit(self, call: PointsCall) -> CallResult:
        kind, source = CREDITS[call.purpose]
        account = await self._account(call.account)
        movement = self._movement(call)
        try:
            if call.purpose == Purpose.REFUND and call.undoes:
                taken = await self._entry_for_key(call.undoes)
                entry = await self.points.restore(
                    account,
                    call.points,
                    kind,
                    source,
                    movement,
                    taken.id,
                    self.program.expiry_months,
                    taken.lots,
                )
            else:
                entry = await self.points.credit(
                    account,
                    call.points,
                    kind,
                    source,
                    movement,
                    expires_at=_expiry(movement.occurred_at, self.program.expiry_months),
                )
        except BalanceLimit as exc:
            return _no_room(exc)
        return CallResult(Outcome.APPLIED, partner_ref=str(entry.id))

    async def reverse(self, call: PointsCall) -> CallResult:
        """Undo a debit: its points go back into the lots they came from."""
        taken = await self._entry_for_key(call.undoes)
        account = await self._account(call.account)
        sink = (
            AccountKind.EXCHANGE if taken.kind == EntryKind.CONVERSION_OUT else AccountKind.REDEEMED
        )
        try:
            entry = await self.points.restore(
                account,
                call.points,
                EntryKind.REFUND,
                sink,
                self._movement(call),
                taken.id,
                self.program.expiry_months,
                taken.lots,
            )
        except BalanceLimit as exc:
            return _no_room(exc)
        return CallResult(Outcome.APPLIED, partner_ref=str(entry.id))

    async def hold(self, call: PointsCall) -> CallResult:
        account = await self._account(call.account)
        try:
            hold = await self.points.hold(
                account,
                call.points,
                self._movement(call),
                dt.timedelta(seconds=self.settings.hold_timeout_seconds),
            )
        except InsufficientPoints as exc:
            return CallResult(
                Outcome.REJECTED, message=exc.message, code=ErrorCode.INSUFFICIENT_POINTS
            )
        return CallResult(Outcome.APPLIED, partner_ref=hold.id)

    async def _hold(self, call: PointsCall) -> Hold:
        hold = await self.session.get(Hold, call.undoes, populate_existing=True)
        if hold is None:
            raise NotFound(f"No hold {call.undoes!r}.")
        return hold

    async def capture(self, call: PointsCall) -> CallResult:
        hold = await self._hold(call)
        sink = AccountKind.REDEEMED if call.purpose == Purpose.REDEMPTION else AccountKind.EXCHANGE
        try:
            entry = await self.points.capture(hold, sink, self._movement(call))
        except InvalidState as exc:
            return CallResult(Outcome.REJECTED, message=exc.message, code=ErrorCode.INVALID_STATE)
        return CallResult(Outcome.APPLIED, partner_ref=str(entry.id))

    async def release(self, call: PointsCall) -> CallResult:
        hold = await self._hold(call)
        try:
            entry = await self.points.release(
                hold, self._movement(call), self.program.expiry_months
            )
        except InvalidState as exc:
            settled = await self._hold(call)
            if settled.status == HoldStatus.RELEASED:  # the sweeper got there first
                return CallResult(Outcome.APPLIED, partner_ref=str(settled.resolve_entry_id))
            return CallResult(Outcome.REJECTED, message=exc.message, code=ErrorCode.INVALID_STATE)
        return CallResult(Outcome.APPLIED, partner_ref=str(entry.id))

    async def list_rewards(self) -> list[RewardOffer]:
        return []  # hosted rewards live in the hub's own catalog tables

    async def list_slots(self, reward_ref: str, date: dt.date | None) -> list[SlotOffer]:
        return []

    async def book(self, request: BookingRequest) -> BookingResult:
        """A hosted merchant's reward is fulfilled by a voucher code the hub issues."""
        return BookingResult(Outcome.APPLIED, booking_ref=new_id("vch").upper())

    async def cancel(self, booking_ref: str, reason: str, idempotency_key: str) -> CallResult:
        return CallResult(Outcome.APPLIED, partner_ref=booking_ref)

    async def health(self) -> bool:
        return True

    async def movements(self, day: dt.date) -> list[PartnerMovement]:
        """The hub's own ledger has no other side to reconcile against."""
        return []


def _no_room(exc: BalanceLimit) -> CallResult:
    """A credit the member's balance has no room for, refused before anything was written.
    A conversion's credit is then reversed; a refund, a compensation or a reversal ends only
    when applied, so its saga tries it again later: it waits for room, never lost."""
    return CallResult(Outcome.REJECTED, message=exc.message, code=ErrorCode.INVALID_INPUT)


def _expiry(at: dt.datetime, months: int | None) -> dt.datetime | None:
    from hub.ledger import expiry_of

    return expiry_of(at, months)
