"""Posting journal entries: balanced, append-only, member balances never below zero.

Member accounts carry a cached balance, updated with the postings in the same
transaction and locked (SELECT ... FOR UPDATE, in id order) before they change.
System accounts (issued, redeemed, exchange, expired, held) carry no cached
balance: updating one row per program on every movement would serialize all of
a program's traffic on it. Their balance is the sum of their postings, which
`hub verify` checks against the member side.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, insert, literal, select, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from hub.db import KEPT, utcnow
from hub.enums import AccountKind, EntryKind
from hub.errors import BalanceLimit, InsufficientPoints, NotFound, RetryTransaction
from hub.models import Account, Entry, Posting
from hub.validate import MAX_BALANCE

if TYPE_CHECKING:
    from hub.caches import Caches


@dataclass(frozen=True)
class Movement:
    """Why points move: who, when, the business date, and a reference."""

    actor: str
    business_date: dt.date
    occurred_at: dt.datetime = field(default_factory=utcnow)
    reference: str | None = None
    memo: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Side:
    """One side of an entry: an account and its signed amount (one posting)."""

    account: Account
    amount: int


class Journal:
    """Writes entries within the caller's transaction; never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        # System accounts never change: read each once per transaction, whichever Journal asks.
        self._system: dict[tuple[str, AccountKind], Account] = session.info.setdefault(
            "system_accounts", {}
        )

    async def system_account(self, program_code: str, kind: AccountKind) -> Account:
        cached = self._system.get((program_code, kind))
        if cached is not None:
            return cached
        kept: Caches | None = self.session.info.get(
            KEPT
        )  # the process's memory: made with the program
        if kept is not None and (found := kept.system_account_now(program_code, kind)):
            self._system[(program_code, kind)] = found
            return found
        account = await self.session.scalar(
            select(Account).where(
                Account.program_code == program_code,
                Account.kind == kind,
                Account.member_id.is_(None),
            )
        )
        if account is None:
            raise NotFound(f"Program {program_code} has no {kind} account.")
        self._system[(program_code, kind)] = account
        return account

    async def lock(self, account_ids: Sequence[int]) -> dict[int, Account]:
        """Lock member accounts in id order (no deadlocks) and return them fresh."""
        ids = sorted(set(account_ids))
        rows = await self.session.scalars(
            select(Account)
            .where(Account.id.in_(ids))
            .order_by(Account.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        found = {a.id: a for a in rows}
        missing = set(ids) - found.keys()
        if missing:
            raise NotFound(f"No account with id {sorted(missing)}.")
        return found

    async def post(
        self,
        kind: EntryKind,
        program_code: str,
        sides: Sequence[Side],
        movement: Movement,
        member_id: str | None = None,
    ) -> Entry:
        """One entry with its postings. Member accounts must be locked by the caller.

        Raises InsufficientPoints, and writes nothing, when a member balance would
        go below zero; BalanceLimit when it would pass MAX_BALANCE (2^31-1).
        """
        if len(sides) < 2 or sum(side.amount for side in sides) != 0:
            raise AssertionError(f"unbalanced entry {kind}: {[side.amount for side in sides]}")
        if any(side.account.program_code != program_code for side in sides):
            raise AssertionError("every posting of an entry is in the entry's program")
        for side in sides:  # refuse before writing anything; _move re-checks atomically
            if side.account.kind == AccountKind.MEMBER and side.account.balance + side.amount < 0:
                raise InsufficientPoints(
                    f"The balance is {side.account.balance:,} points; {-side.amount:,} are needed."
                )
            if side.account.kind == AccountKind.MEMBER and side.account.balance + side.amount > (
                MAX_BALANCE
            ):
                raise _over_limit(side.account.balance, side.amount)
        values: dict[str, Any] = {
            "kind": kind,
            "program_code": program_code,
            "member_id": member_id,
            "actor": movement.actor,
            "idempotency_key": movement.idempotency_key,
            "occurred_at": movement.occurred_at,
            "business_date": movement.business_date,
            "reference": movement.reference,
            "memo": movement.memo,
        }
        if self.session.get_bind().dialect.name == "postgresql":
            return await self._post_at_once(values, sides)
        try:  # the entry alone: other pending changes are flushed when they are due
            entry: Entry | None = await self.session.scalar(
                insert(Entry).values(values).returning(Entry)
            )
        except IntegrityError as exc:  # a concurrent twin (same order); run again to see it
            raise RetryTransaction() from exc
        assert entry is not None
        rows = []
        for side in sides:
            balance_after = None
            if side.account.kind == AccountKind.MEMBER:
                balance_after = await self._move(side.account, side.amount)
            rows.append(
                {
                    "entry_id": entry.id,
                    "account_id": side.account.id,
                    "amount": side.amount,
                    "balance_after": balance_after,
                }
            )
        # One multi-row VALUES (a list of parameters is an ORM bulk insert, split by the
        # columns each row sets).
        await self.session.execute(insert(Posting).values(rows))
        return entry

    async def _post_at_once(self, values: dict[str, Any], sides: Sequence[Side]) -> Entry:
        """PostgreSQL: the member balances moved first, then the entry and its postings in
        one statement (a data-modifying CTE), one round trip fewer per entry."""
        after = [
            await self._move(side.account, side.amount)
            if side.account.kind == AccountKind.MEMBER
            else None
            for side in sides
        ]
        entry = insert(Entry).values(values).returning(*Entry.__table__.c).cte("entry")
        postings = (
            insert(Posting)
            .from_select(
                ["entry_id", "account_id", "amount", "balance_after"],
                union_all(
                    *(
                        select(
                            entry.c.id,
                            literal(side.account.id, BigInteger()),
                            literal(side.amount, BigInteger()),
                            literal(balance, BigInteger()),
                        )
                        for side, balance in zip(sides, after, strict=True)
                    )
                ),
            )
            .returning(Posting.id)
            .cte("postings")
        )
        try:
            written: Entry | None = await self.session.scalar(
                select(Entry).from_statement(select(entry).add_cte(postings))
            )
        except IntegrityError as exc:  # a concurrent twin (same order); run again to see it
            raise RetryTransaction() from exc
        assert written is not None
        return written

    async def _move(self, account: Account, amount: int) -> int:
        """Change a member balance atomically, within [0, MAX_BALANCE]; the new balance."""
        new_balance = await self.session.scalar(
            update(Account)
            .where(
                Account.id == account.id,
                Account.balance + amount >= 0,
                Account.balance + amount <= MAX_BALANCE,
            )
            .values(balance=Account.balance + amount)
            .returning(Account.balance)
            .execution_options(synchronize_session=False)
        )
        if new_balance is None and amount > 0:
            # The balance grew since it was read (post() checked it): run the transaction
            # again, so that the check refuses it before anything is written.
            raise RetryTransaction()
        if new_balance is None:
            raise InsufficientPoints(
                f"The balance is {account.balance:,} points; {-amount:,} are needed."
            )
        set_committed_value(account, "balance", new_balance)
        return int(new_balance)


def _over_limit(balance: int, amount: int) -> BalanceLimit:
    return BalanceLimit(
        f"Crediting {amount:,} points would take the balance of {balance:,} past "
        f"{MAX_BALANCE:,}, the most a balance can hold; spend or convert points first."
    )
