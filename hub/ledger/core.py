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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    cast,
    insert,
    literal,
    null,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from hub.db import KEPT, utcnow
from hub.enums import AccountKind, EntryKind
from hub.errors import BalanceLimit, FieldPath, InsufficientPoints, NotFound, RetryTransaction
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


# The statements an entry brings with it, made from its id: a column on PostgreSQL (they
# select from the entry's CTE, and write nothing when it wrote nothing), a literal elsewhere.
Riders = Callable[[ColumnElement[int]], Sequence[Any]]


@dataclass(frozen=True)
class Side:
    """One side of an entry: an account and its signed amount (one posting)."""

    account: Account
    amount: int


def locked_accounts(session: AsyncSession) -> dict[int, Account]:
    """The member accounts this transaction has locked (FOR UPDATE), by id."""
    held: dict[int, Account] = session.info.setdefault("locked_accounts", {})
    return held


def lock_accounts(query: Select[Account]) -> Select[Account]:
    """A read of accounts that locks them in id order (no deadlocks) and reads them fresh;
    the caller notes them in locked_accounts."""
    return query.order_by(Account.id).with_for_update().execution_options(populate_existing=True)


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
        """Lock member accounts in id order (no deadlocks) and return them fresh. Accounts
        this transaction has locked already are not read again: their rows are its own, and
        their balances are kept as they move."""
        ids = sorted(set(account_ids))
        held = locked_accounts(self.session)
        if all(i in held for i in ids):
            return {i: held[i] for i in ids}
        rows = await self.session.scalars(lock_accounts(select(Account).where(Account.id.in_(ids))))
        found = {a.id: a for a in rows}
        missing = set(ids) - found.keys()
        if missing:
            raise NotFound(f"No account with id {sorted(missing)}.")
        held.update(found)
        return found

    async def post(
        self,
        kind: EntryKind,
        program_code: str,
        sides: Sequence[Side],
        movement: Movement,
        member_id: str | None = None,
        riders: Riders | None = None,
    ) -> Entry:
        """One entry with its postings. Member accounts must be locked by the caller.

        `riders`: the statements the entry brings with it (a credit's lot, a debit's lot
        uses), made from the entry's id; on PostgreSQL they are part of the entry's one
        statement.

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
                raise over_limit(side.account.balance, side.amount)
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
            return await self._post_at_once(values, sides, riders)
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
        for statement in riders(literal(entry.id, BigInteger())) if riders else ():
            await self.session.execute(statement)
        return entry

    async def _post_at_once(
        self, values: dict[str, Any], sides: Sequence[Side], riders: Riders | None
    ) -> Entry:
        """PostgreSQL: one statement (data-modifying CTEs) moves the member balances within
        [0, MAX_BALANCE], and, only when every one moved, writes the entry, its postings
        and its riders. Nothing but the balances is written when one could not move, and
        the caller's transaction is then abandoned (the error raised says why)."""
        members = [side for side in sides if side.account.kind == AccountKind.MEMBER]
        moved = [
            update(Account)
            .where(
                Account.id == side.account.id,
                Account.balance + side.amount >= 0,
                Account.balance + side.amount <= MAX_BALANCE,
            )
            .values(balance=Account.balance + side.amount)
            .returning(Account.balance)
            .cte(f"moved_{n}")
            for n, side in enumerate(members)
        ]
        after = {
            side.account.id: select(cte.c.balance).scalar_subquery()
            for side, cte in zip(members, moved, strict=True)
        }
        columns = Entry.__table__.c
        entry = (
            insert(Entry)
            .from_select(
                list(values),
                select(*(literal(v, columns[k].type) for k, v in values.items())).where(
                    *(select(cte).exists() for cte in moved)
                ),
            )
            .returning(*columns)
            .cte("entry")
        )
        postings = insert(Posting).from_select(
            ["entry_id", "account_id", "amount", "balance_after"],
            union_all(
                *(
                    select(
                        entry.c.id,
                        literal(side.account.id, BigInteger()),
                        literal(side.amount, BigInteger()),
                        after.get(side.account.id, cast(null(), BigInteger())),
                    )
                    for side in sides
                )
            ),
        )
        # One row whatever happened: the new balances (NULL where one did not move) and the
        # entry (NULL when it was not written).
        one = select(literal(1).label("one")).subquery()
        statement = select(
            *(after[side.account.id].label(f"b{n}") for n, side in enumerate(members)), *entry.c
        ).select_from(one.outerjoin(entry, true()))
        statement = statement.add_cte(*moved, postings.cte("postings"))
        for n, rider in enumerate(riders(entry.c.id) if riders else ()):
            statement = statement.add_cte(rider.cte(f"rider_{n}"))
        try:
            row = (await self.session.execute(statement)).one()._mapping
        except IntegrityError as exc:  # a concurrent twin (same order); run again to see it
            raise RetryTransaction() from exc
        for n, side in enumerate(members):
            if row[f"b{n}"] is None:
                raise _refused(side.account, side.amount)
            set_committed_value(side.account, "balance", int(row[f"b{n}"]))
        written = Entry(**{c.name: row[c.name] for c in columns})
        make_transient_to_detached(written)
        self.session.add(written)
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
        if new_balance is None:
            raise _refused(account, amount)
        set_committed_value(account, "balance", new_balance)
        return int(new_balance)


def _refused(account: Account, amount: int) -> RetryTransaction | InsufficientPoints:
    """Why a member balance did not move though post() let it: a credit met a balance that
    grew since it was read (run the transaction again, so that the check refuses it before
    anything is written); a debit met too few points."""
    if amount > 0:
        return RetryTransaction()
    return InsufficientPoints(f"The balance is {account.balance:,} points; {-amount:,} are needed.")


def over_limit(balance: int, amount: int, field: FieldPath | None = None) -> BalanceLimit:
    """Why a credit of `amount` is refused into a balance of `balance`."""
    return BalanceLimit(
        f"Crediting {amount:,} points would take the balance of {balance:,} past "
        f"{MAX_BALANCE:,}, the most a balance can hold; spend or convert points first.",
        field=field,
    )
