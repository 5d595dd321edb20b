"""Member points: credits that make lots, debits that consume them, holds, restores."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Table,
    Text,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db import Prepared
from hub.enums import AccountKind, EntryKind, HoldStatus
from hub.errors import InvalidState
from hub.ids import new_id
from hub.ledger.core import Journal, Movement, NewLot, Rider, Side, TakenLots
from hub.models import Account, Entry, Hold, Lot, LotUse
from hub.models.base import table_of


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """The same instant `months` later, clamped to the month's last day."""
    month = moment.month - 1 + months
    year = moment.year + month // 12
    month = month % 12 + 1
    days = [31, 29 if _leap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return moment.replace(year=year, month=month, day=min(moment.day, days))


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def expiry_of(earned_at: dt.datetime, months: int | None) -> dt.datetime | None:
    return add_months(earned_at, months) if months else None


class Points:
    """Operations on member accounts, within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.journal = Journal(session)

    async def credit(
        self,
        account: Account,
        points: int,
        kind: EntryKind,
        source: AccountKind,
        movement: Movement,
        expires_at: dt.datetime | None,
    ) -> Entry:
        """Points into a member account from a system account, as a new lot."""
        lot = NewLot(account.id, points, expires_at, movement.occurred_at)
        return await self._post(kind, account, points, source, movement, lot)

    async def debit(
        self,
        account: Account,
        points: int,
        kind: EntryKind,
        sink: AccountKind,
        movement: Movement,
    ) -> Entry:
        """Points out of a member account, soonest-expiring lots first.

        Lots already past their expiry are expired first, so they are never spent.
        """
        account = (await self.journal.lock([account.id]))[account.id]
        lots = await _open_lots(self.session, account)
        at = movement.occurred_at
        await expire_lots(self, account, [lot for lot in lots if _overdue(lot, at)], movement)
        taken = _taken(lots, points)
        uses = TakenLots(tuple((lot.id, take) for lot, take in taken.items()))
        entry = await self._post(kind, account, -points, sink, movement, uses if taken else None)
        if sum(taken.values()) != points:  # the balance had them: the lots must too
            raise AssertionError(
                f"account {account.id}: lots hold {sum(taken.values())} of {points}"
            )
        for lot, take in taken.items():
            lot.remaining -= take
        return entry

    async def _post(
        self,
        kind: EntryKind,
        account: Account,
        points: int,
        other: AccountKind,
        movement: Movement,
        rider: Rider | None = None,
    ) -> Entry:
        """An entry moving `points` into the member's account (out of it when negative),
        from (to) the program's system account `other`."""
        contra = await self.journal.system_account(account.program_code, other)
        return await self.journal.post(
            kind,
            account.program_code,
            [Side(account, points), Side(contra, -points)],
            movement,
            member_id=account.member_id,
            rider=rider,
        )

    async def restore(
        self,
        account: Account,
        points: int,
        kind: EntryKind,
        source: AccountKind,
        movement: Movement,
        taken_by: int,
        expires_after_months: int | None,
        taken: Sequence[LotTaken] | None = None,
    ) -> Entry:
        """Give back points an earlier entry took, into the lots they came from (`taken`:
        what entry `taken_by` took, when the caller read it with the entry; else read here).

        Each point keeps its lot's expiry: a lot given points back that has expired
        meanwhile goes on to `expired` at once (with every other expired lot of the account
        then), so redeeming and cancelling never extends an expiry. Only points no lot
        records (none, as entries are written today) come back as a new lot under the
        program's usual expiry.
        """
        account = (await self.journal.lock([account.id]))[account.id]
        if taken is None:
            taken = await lots_taken_by(self.session, taken_by)
        left = points
        given = []
        overdue = False
        for lot in taken:
            give = min(left, lot.points)
            if give <= 0:
                continue
            given.append((lot.lot_id, -give))  # a negative take: the lot's points back
            left -= give
            overdue |= lot.expires_at is not None and lot.expires_at <= movement.occurred_at
        # The lots' points and their uses go with the entry (in its statement on PostgreSQL).
        rider = TakenLots(tuple(given)) if given else None
        entry = await self._post(kind, account, points, source, movement, rider)
        if left:
            self.session.add(
                Lot(
                    account_id=account.id,
                    entry_id=entry.id,
                    points=left,
                    remaining=left,
                    expires_at=expiry_of(movement.occurred_at, expires_after_months),
                    created_at=movement.occurred_at,
                )
            )
            await self.session.flush()
        if overdue:  # (a new lot above expires later; the account's other lots are the sweep's)
            await expire_overdue(self, account, movement)
        return entry

    async def hold(
        self, account: Account, points: int, movement: Movement, lasting: dt.timedelta
    ) -> Hold:
        """Set points aside (member -> held) until captured or released."""
        entry = await self.debit(account, points, EntryKind.HOLD, AccountKind.HELD, movement)
        hold = Hold(
            id=new_id("hld"),
            account_id=account.id,
            points=points,
            status=HoldStatus.PENDING,
            reference=movement.reference,
            hold_entry_id=entry.id,
            expires_at=movement.occurred_at + lasting,
            created_at=movement.occurred_at,
        )
        self.session.add(hold)
        await self.session.flush()
        return hold

    async def _claim(self, hold: Hold, status: HoldStatus, at: dt.datetime) -> None:
        """Take the hold from PENDING to `status` before anything is posted, or raise.

        The conditional UPDATE is the claim: of two transactions settling one hold (a
        saga and the sweeper), the second waits on the row and then finds it settled.
        """
        result = await self.session.execute(
            update(Hold)
            .where(Hold.id == hold.id, Hold.status == HoldStatus.PENDING)
            .values(status=status, resolved_at=at)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise InvalidState(f"Hold {hold.id} is no longer pending.")

    async def _resolved_by(self, hold: Hold, entry: Entry) -> None:
        await self.session.execute(
            update(Hold)
            .where(Hold.id == hold.id)
            .values(resolve_entry_id=entry.id)
            .execution_options(synchronize_session=False)
        )

    async def capture(self, hold: Hold, sink: AccountKind, movement: Movement) -> Entry:
        """Held points leave for good (held -> redeemed or exchange)."""
        await self._claim(hold, HoldStatus.CAPTURED, movement.occurred_at)
        account = await self.session.get(Account, hold.account_id)
        assert account is not None
        held = await self.journal.system_account(account.program_code, AccountKind.HELD)
        to = await self.journal.system_account(account.program_code, sink)
        entry = await self.journal.post(
            EntryKind.CAPTURE,
            account.program_code,
            [Side(held, -hold.points), Side(to, hold.points)],
            movement,
            member_id=account.member_id,
        )
        await self._resolved_by(hold, entry)
        return entry

    async def release(self, hold: Hold, movement: Movement, expiry_months: int | None) -> Entry:
        """Held points go back to the member, into the lots they came from."""
        await self._claim(hold, HoldStatus.RELEASED, movement.occurred_at)
        account = await self.session.get(Account, hold.account_id)
        assert account is not None
        entry = await self.restore(
            account,
            hold.points,
            EntryKind.RELEASE,
            AccountKind.HELD,
            movement,
            taken_by=hold.hold_entry_id,
            expires_after_months=expiry_months,
        )
        await self._resolved_by(hold, entry)
        return entry


@dataclass(eq=False, slots=True)
class OpenLot:
    """A lot with points left, as a debit reads it: no ORM instance (a debit writes its
    lots with statements of its own: the rider's UPDATE, expire_lots')."""

    id: int
    remaining: int
    expires_at: dt.datetime | None


_LOTS = table_of(Lot)
_LOT_USES = table_of(LotUse)
_LOT_COLUMNS = (_LOTS.c.id, _LOTS.c.remaining, _LOTS.c.expires_at)
_OPEN_LOTS = Prepared(
    select(*_LOT_COLUMNS)
    .where(_LOTS.c.account_id == bindparam("account", type_=BigInteger()), _LOTS.c.remaining > 0)
    .order_by(_LOTS.c.expires_at.asc().nulls_last(), _LOTS.c.id),
    autoflush=True,
)
_OVERDUE_LOTS = Prepared(
    select(*_LOT_COLUMNS).where(
        _LOTS.c.account_id == bindparam("account", type_=BigInteger()),
        _LOTS.c.remaining > 0,
        _LOTS.c.expires_at <= bindparam("at", type_=_LOTS.c.expires_at.type),
    ),
    autoflush=True,
)


@dataclass(frozen=True, slots=True)
class LotTaken:
    """What an entry took from one lot (its own uses; a restore records its give-backs
    under its own entry), and when that lot expires."""

    lot_id: int
    points: int
    expires_at: dt.datetime | None


# The columns of a read of what an entry took, lot by lot (LotTaken's: lot_uses joined to
# lots, grouped by lot and its expiry).
TAKEN_COLUMNS = (
    _LOT_USES.c.lot_id,
    func.sum(_LOT_USES.c.points).label("points"),
    _LOTS.c.expires_at,
)


def lots_taken(rows: Sequence[Mapping[str, Any]]) -> list[LotTaken]:
    """LotTaken of a read's rows of TAKEN_COLUMNS (a row of no lot, of an outer join: none)."""
    return [
        LotTaken(int(row["lot_id"]), int(row["points"]), row["expires_at"])
        for row in rows
        if row["lot_id"] is not None
    ]


# What an entry took from each lot, oldest lot first.
_TAKEN_BY = Prepared(
    select(*TAKEN_COLUMNS)
    .select_from(_LOT_USES.join(_LOTS, _LOTS.c.id == _LOT_USES.c.lot_id))
    .where(_LOT_USES.c.entry_id == bindparam("entry", type_=BigInteger()))
    .group_by(_LOT_USES.c.lot_id, _LOTS.c.expires_at)
    .order_by(_LOT_USES.c.lot_id),
    autoflush=True,
)


async def lots_taken_by(session: AsyncSession, entry_id: int) -> list[LotTaken]:
    """What entry `entry_id` took from each lot, oldest lot first."""
    return lots_taken(await _TAKEN_BY.all(session, {"entry": entry_id}))


_EMPTY_LOTS = (
    update(_LOTS).where(_LOTS.c.id.in_(bindparam("lots", expanding=True))).values(remaining=0)
)


async def _open_lots(session: AsyncSession, account: Account) -> list[OpenLot]:
    """The account's lots with points left, soonest-expiring first (never-expiring last):
    those read with the account's lock (OPEN_LOTS), once, or else read now."""
    kept: dict[int, list[OpenLot]] | None = session.info.get(OPEN_LOTS)
    if kept is not None and account.id in kept:
        return kept.pop(account.id)
    return [OpenLot(**row) for row in await _OPEN_LOTS.all(session, {"account": account.id})]


# On a session's info: the open lots of accounts, by account id, read with the accounts'
# lock (open_lots_with_lock): the next debit of each takes them instead of reading them.
OPEN_LOTS = "open_lots"
_ORDER = (_LOTS.c.expires_at.asc().nulls_last(), _LOTS.c.id)


def open_lots_with_lock(accounts: Table, debited: Any) -> tuple[Any, list[Any]]:
    """For a read that locks rows of `accounts` (FOR UPDATE OF them): a LATERAL subquery of
    the open lots of each one `debited` (a condition on its row) holds, as arrays in
    _open_lots' order (NULL for the others, whose lots no debit will need), and the columns
    to select: the arrays (l_id, l_remaining, l_expires_at) and the row's xmin as the lock found it
    (l_now) and as the read's snapshot saw it (l_seen). When they differ, a transaction
    changed the account after the snapshot was taken (the lock waited for it), and every
    change of a lot is one of its account's (an entry): the lots read are then not kept."""
    lots = (
        select(
            *(
                func.array_agg(aggregate_order_by(column, *_ORDER)).label(f"l_{column.key}")
                for column in _LOT_COLUMNS
            )
        )
        .where(_LOTS.c.account_id == accounts.c.id, _LOTS.c.remaining > 0, debited)
        .lateral("open_lots")
    )
    seen = accounts.alias("seen")
    columns = [
        *lots.c,
        cast(literal_column(f"{accounts.name}.xmin"), Text()).label("l_now"),
        select(cast(literal_column("seen.xmin"), Text()))
        .where(seen.c.id == accounts.c.id)
        .scalar_subquery()
        .label("l_seen"),
    ]
    return lots, columns


def keep_open_lots(session: AsyncSession, account_id: int, row: Mapping[str, Any]) -> None:
    """Keep the open lots a row of open_lots_with_lock's read gives, when they are the
    account's as locked."""
    if row["l_id"] is None or row["l_now"] != row["l_seen"]:
        return  # (none read, or read before the lock's wait: see open_lots_with_lock)
    columns = row["l_id"], row["l_remaining"], row["l_expires_at"]
    lots = [OpenLot(int(i), int(r), e) for i, r, e in zip(*columns, strict=True)]
    session.info.setdefault(OPEN_LOTS, {})[account_id] = lots


def _taken(lots: Sequence[OpenLot], points: int) -> dict[OpenLot, int]:
    """What `points` take from the account's open lots, soonest-expiring first (the expired
    ones are empty by now); less than `points` when they hold fewer."""
    taken: dict[OpenLot, int] = {}
    left = points
    for lot in lots:
        if left == 0:
            break
        if lot.remaining:
            taken[lot] = min(left, lot.remaining)
            left -= taken[lot]
    return taken


def _overdue(lot: OpenLot, at: dt.datetime) -> bool:
    return lot.expires_at is not None and lot.expires_at <= at


async def expire_overdue(points: Points, account: Account, movement: Movement) -> int:
    """Move what is left of this account's expired lots to `expired`; the points moved."""
    found = await _OVERDUE_LOTS.all(
        points.session, {"account": account.id, "at": movement.occurred_at}
    )
    lots = [OpenLot(**row) for row in found]
    return await expire_lots(points, account, lots, movement)


async def expire_lots(
    points: Points, account: Account, lots: Sequence[OpenLot], movement: Movement
) -> int:
    """Move what is left of these (overdue) lots to `expired`, in one EXPIRY entry; the
    points moved."""
    total = sum(lot.remaining for lot in lots)
    if total == 0:
        return 0
    sink = await points.journal.system_account(account.program_code, AccountKind.EXPIRED)
    entry = await points.journal.post(
        EntryKind.EXPIRY,
        account.program_code,
        [Side(account, -total), Side(sink, total)],
        Movement(
            actor="system:expiry",
            business_date=movement.business_date,
            occurred_at=movement.occurred_at,
            memo=f"{len(lots)} lot(s) expired",
        ),
        member_id=account.member_id,
    )
    uses = [{"entry_id": entry.id, "lot_id": lot.id, "points": lot.remaining} for lot in lots]
    await points.session.execute(insert(LotUse), uses)
    await points.session.execute(_EMPTY_LOTS, {"lots": [lot.id for lot in lots]})
    for lot in lots:
        lot.remaining = 0
    return total
