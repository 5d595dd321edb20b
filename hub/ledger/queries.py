"""Reading the ledger: history pages, open lots, pending holds."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.enums import HoldStatus
from hub.models import Account, Entry, Hold, Lot, Posting


@dataclass(frozen=True)
class HistoryLine:
    posting_id: int
    entry: Entry
    points: int
    balance_after: int


async def history(
    session: AsyncSession,
    member_id: str,
    programs: Sequence[str] | None,
    first: int,
    before_posting: int | None,
) -> tuple[list[HistoryLine], bool]:
    """A member's postings, newest first, and whether more follow."""
    query = (
        select(Posting, Entry)
        .join(Entry, Entry.id == Posting.entry_id)
        .join(Account, Account.id == Posting.account_id)
        .where(Account.member_id == member_id)
        .order_by(Posting.id.desc())
        .limit(first + 1)
    )
    if programs is not None:
        query = query.where(Account.program_code.in_(programs))
    if before_posting is not None:
        query = query.where(Posting.id < before_posting)
    rows = (await session.execute(query)).all()
    lines = [
        HistoryLine(
            posting_id=posting.id,
            entry=entry,
            points=posting.amount,
            balance_after=posting.balance_after or 0,
        )
        for posting, entry in rows[:first]
    ]
    return lines, len(rows) > first


async def open_lots_by_account(
    session: AsyncSession, account_ids: Sequence[int]
) -> dict[int, list[Lot]]:
    """Open lots that expire, soonest first, per account."""
    rows = await session.scalars(
        select(Lot)
        .where(Lot.account_id.in_(account_ids), Lot.remaining > 0, Lot.expires_at.is_not(None))
        .order_by(Lot.expires_at, Lot.id)
    )
    found: dict[int, list[Lot]] = {i: [] for i in account_ids}
    for lot in rows:
        found[lot.account_id].append(lot)
    return found


async def held_by_account(session: AsyncSession, account_ids: Sequence[int]) -> dict[int, int]:
    rows = await session.execute(
        select(Hold.account_id, func.sum(Hold.points))
        .where(Hold.account_id.in_(account_ids), Hold.status == HoldStatus.PENDING)
        .group_by(Hold.account_id)
    )
    found = dict.fromkeys(account_ids, 0)
    found.update({account_id: int(total) for account_id, total in rows.all()})
    return found


def spendable(balance: int, lots: Sequence[Lot], now: dt.datetime) -> int:
    """The balance less lots already past expiry that the expiry job has not swept yet."""
    overdue = sum(lot.remaining for lot in lots if lot.expires_at and lot.expires_at <= now)
    return balance - overdue
