"""A member with its accounts, balances, holds and expiring lots, read in one statement.

The hot read of the API (`member(id:) { accounts { balance } }`) needs the member, each of
its accounts, the points on hold and the open lots that expire (the balance leaves out lots
past expiry that the expiry job has not swept yet). One SQLAlchemy Core SELECT reads them
all (members LEFT JOIN accounts LEFT JOIN lots, the pending holds as a scalar subquery per
account), with no ORM instance loading: rows become small frozen dataclasses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ARRAY, Select, String, and_, any_, bindparam, func, select

from hub.db import Prepared, Reads, utcnow
from hub.enums import HoldStatus
from hub.models import Account, Hold, Lot, Member


@dataclass(frozen=True, slots=True)
class LotView:
    """An open lot that expires."""

    remaining: int
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class AccountView:
    """A member's account as the API shows it (the columns `Account` has, and more)."""

    id: int
    member_id: str
    program_code: str
    external_ref: str | None
    balance: int
    partner_balance: int | None
    partner_balance_at: dt.datetime | None
    held: int  # points on hold for pending redemptions
    # Open lots that expire, soonest first; None when the read left them out (member_balances)
    # and counted instead what is past expiry as it read: `expired`.
    lots: tuple[LotView, ...] | None
    expired: int = 0

    def spendable(self, now: dt.datetime) -> int:
        """The balance less lots already past expiry that the expiry job has not swept yet
        (as the read found them, when it left the lots out)."""
        if self.lots is None:
            return self.balance - self.expired
        return self.balance - sum(lot.remaining for lot in self.lots if lot.expires_at <= now)

    def expiring(self, now: dt.datetime) -> list[LotView]:
        if self.lots is None:
            raise AssertionError("expiring() of a view read without its lots")
        return [lot for lot in self.lots if lot.expires_at > now]


@dataclass(frozen=True, slots=True)
class MemberView:
    id: str
    display_name: str
    accounts: tuple[AccountView, ...]  # by program code
    credit_level: str | None = None

    @property
    def programs(self) -> list[str]:
        return [a.program_code for a in self.accounts]


_HELD = (
    select(func.coalesce(func.sum(Hold.points), 0))
    .where(Hold.account_id == Account.id, Hold.status == HoldStatus.PENDING)
    .correlate(Account)
    .scalar_subquery()
)

_COLUMNS = (
    Member.id,
    Member.display_name,
    Member.credit_level,
    Account.id,
    Account.program_code,
    Account.external_ref,
    Account.balance,
    Account.partner_balance,
    Account.partner_balance_at,
    _HELD,
    Lot.remaining,
    Lot.expires_at,
)


# What is left in an account's open lots past expiry at :now (the balances' read).
_EXPIRED = (
    select(func.coalesce(func.sum(Lot.remaining), 0))
    .where(
        Lot.account_id == Account.id,
        Lot.remaining > 0,
        Lot.expires_at <= bindparam("now", type_=Lot.expires_at.type),
    )
    .correlate(Account)
    .scalar_subquery()
)


def _query(postgresql: bool, lots: bool) -> Select[Any]:
    """On PostgreSQL the ids are one array parameter (a statement prepared once, whatever
    their number), its columns labelled c0, c1, ... in order; elsewhere an IN list.
    `lots`: a row per open lot that expires; else a row per account, with what is past
    expiry summed (_EXPIRED) in the lots' two columns' place."""
    open_lot = and_(Lot.account_id == Account.id, Lot.remaining > 0, Lot.expires_at.is_not(None))
    chosen = _COLUMNS if lots else (*_COLUMNS[:-2], _EXPIRED)
    if postgresql:
        columns: Sequence[Any] = [c.label(f"c{n}") for n, c in enumerate(chosen)]
        ids = bindparam("member_ids", type_=ARRAY(String()))
        which = Member.id == any_(ids)
    else:
        columns = chosen
        which = Member.id.in_(bindparam("member_ids", expanding=True))
    query = (
        select(*columns)
        .select_from(Member)
        .outerjoin(Account, Account.member_id == Member.id)
        .where(which)
    )
    if not lots:
        return query.order_by(Member.id, Account.program_code)
    return query.outerjoin(Lot, open_lot).order_by(
        Member.id, Account.program_code, Lot.expires_at, Lot.id
    )


# Built once: SQLAlchemy then finds them in its compiled cache without building them
# again; PostgreSQL's are sent through asyncpg, compiled once (Prepared).
_QUERY = {lots: _query(postgresql=False, lots=lots) for lots in (True, False)}
_PREPARED = {lots: Prepared(_query(postgresql=True, lots=lots)) for lots in (True, False)}


async def member_views(conn: Reads, member_ids: Sequence[str]) -> dict[str, MemberView]:
    """The members found among `member_ids`, each with every account it holds and its open
    lots that expire."""
    return await _views(conn, member_ids, with_lots=True)


async def member_balances(conn: Reads, member_ids: Sequence[str]) -> dict[str, MemberView]:
    """member_views without the lots: a row per account, not per lot, for a read that asks
    balances and not which lots expire (a member may hold thousands)."""
    return await _views(conn, member_ids, with_lots=False)


async def _views(
    conn: Reads, member_ids: Sequence[str], *, with_lots: bool
) -> dict[str, MemberView]:
    if not member_ids:
        return {}
    params: dict[str, Any] = {"member_ids": list(member_ids)}
    if not with_lots:
        params["now"] = utcnow()
    rows: Sequence[Sequence[Any]]
    if conn.dialect == "postgresql":
        rows = [tuple(row.values()) for row in await conn.read(_PREPARED[with_lots], params)]
    else:
        rows = (await conn.execute(_QUERY[with_lots], params)).all()
    return _views_of(rows, with_lots)


def _views_of(rows: Sequence[Sequence[Any]], with_lots: bool) -> dict[str, MemberView]:
    """The rows as views: ten columns of the member and an account, then the lot's two
    (a row per open lot that expires) `with_lots`, else what is past expiry (a row per
    account, and the views' accounts carry no lots)."""
    members: dict[str, tuple[str, str | None]] = {}
    accounts: dict[str, list[AccountView]] = {}
    lots: dict[int, list[LotView]] = {}
    for row in rows:
        member_id, name, level, account_id, code, ref, balance, pb, pb_at, held, *rest = row
        if member_id not in members:
            members[member_id] = (name, level)
            accounts[member_id] = []
        if account_id is None:
            continue
        if account_id not in lots:
            lots[account_id] = []
            accounts[member_id].append(
                AccountView(
                    id=account_id,
                    member_id=member_id,
                    program_code=code,
                    external_ref=ref,
                    balance=balance,
                    partner_balance=pb,
                    partner_balance_at=pb_at,
                    held=int(held or 0),
                    lots=() if with_lots else None,
                    expired=0 if with_lots else int(rest[0] or 0),
                )
            )
        if with_lots and rest[0] is not None:
            lots[account_id].append(LotView(remaining=rest[0], expires_at=rest[1]))
    return {
        member_id: MemberView(
            id=member_id,
            display_name=name,
            credit_level=level,
            accounts=tuple(
                replace(a, lots=tuple(lots[a.id])) if lots[a.id] else a for a in accounts[member_id]
            ),
        )
        for member_id, (name, level) in members.items()
    }
