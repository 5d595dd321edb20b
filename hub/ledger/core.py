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
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ARRAY,
    CTE,
    BigInteger,
    ColumnElement,
    bindparam,
    cast,
    func,
    insert,
    null,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from hub.db import KEPT, Deferred, Prepared, adopted, defer, detached, next_id, utcnow
from hub.enums import AccountKind, EntryKind
from hub.errors import BalanceLimit, FieldPath, InsufficientPoints, NotFound, RetryTransaction
from hub.models import Account, Entry, Lot, LotUse, Posting
from hub.models.base import table_of
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
class NewLot:
    """A credit's rider: the lot its points make in the member's account."""

    account_id: int
    points: int
    expires_at: dt.datetime | None
    created_at: dt.datetime


@dataclass(frozen=True)
class TakenLots:
    """A debit's rider: the points it takes from each lot, as (lot id, points); a restore's
    gives points back with negative takes (its lot uses are negative, as they undo)."""

    taken: tuple[tuple[int, int], ...]


# What an entry writes with it, in the same statement on PostgreSQL (nothing when the entry
# is not written), in the statements after it elsewhere.
Rider = NewLot | TakenLots


@dataclass(frozen=True)
class Side:
    """One side of an entry: an account and its signed amount (one posting)."""

    account: Account
    amount: int


def locked_accounts(session: AsyncSession) -> dict[int, Account]:
    """The member accounts this transaction has locked (FOR UPDATE), by id."""
    held: dict[int, Account] = session.info.setdefault("locked_accounts", {})
    return held


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
        rows = await _accounts_locked(len(ids)).all(
            self.session, {f"account_{n}": i for n, i in enumerate(ids)}
        )
        found = {a.id: a for a in (adopted(self.session, Account, row) for row in rows)}
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
        rider: Rider | None = None,
    ) -> Entry:
        """One entry with its postings. Member accounts must be locked by the caller.

        `rider`: what the entry brings with it (a credit's lot, a debit's lot uses); on
        PostgreSQL it is part of the entry's one statement.

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
            return await self._post_at_once(values, sides, rider)
        return await self._post_in_turn(values, sides, rider)

    async def _post_in_turn(
        self, values: dict[str, Any], sides: Sequence[Side], rider: Rider | None
    ) -> Entry:
        """SQLite (no data-modifying CTEs): the entry, each member balance, the postings and
        the rider, a statement each, every one built once for the process."""
        try:  # the entry alone: other pending changes are flushed when they are due
            entry: Entry | None = await self.session.scalar(_INSERT_ENTRY, values)
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
        await self.session.execute(_INSERT_POSTINGS, rows)  # one executemany
        if isinstance(rider, NewLot):
            await self.session.execute(_INSERT_LOT, {**_lot_values(rider), "entry_id": entry.id})
        elif isinstance(rider, TakenLots):
            await self.session.execute(
                _INSERT_LOT_USES,
                [{"entry_id": entry.id, "lot_id": i, "points": p} for i, p in rider.taken],
            )
            await self.session.execute(
                _TAKE_FROM_LOT, [{"lot": i, "take": p} for i, p in rider.taken]
            )
        return entry

    async def _post_at_once(
        self, values: dict[str, Any], sides: Sequence[Side], rider: Rider | None
    ) -> Entry:
        """PostgreSQL: one write (data-modifying CTEs) moves the member balances within
        [0, MAX_BALANCE], and, only when every one moved, writes the entry, its postings
        and its rider. It is deferred (hub.db.defer): sent with the transaction's next
        statement, or with its appended rows as it commits, so the entry's id is drawn
        first (next_id). The balances are the ones this transaction holds (post() checked
        them); the write checks them again, and a balance that could not move makes the
        transaction fail there (the error raised says why), nothing written.

        The SQL is built once per shape (which sides are members, which rider) and takes
        this entry's values as parameters."""
        shape = tuple(side.account.kind == AccountKind.MEMBER for side in sides)
        entry_id = await next_id(self.session, _ENTRIES)
        # Every name prefixed: an UPDATE would also set a column its parameters name.
        params = {f"entry_{k}": v for k, v in values.items()}
        params["entry_id"] = entry_id
        rows = set()
        for n, side in enumerate(sides):
            params[f"account_{n}"] = side.account.id
            params[f"amount_{n}"] = side.amount
            if shape[n]:
                rows.add(("accounts", side.account.id))
        if isinstance(rider, NewLot):
            params.update({f"lot_{k}": v for k, v in _lot_values(rider).items()})
        elif isinstance(rider, TakenLots):
            params["taken_lots"] = [i for i, _ in rider.taken]
            params["taken_points"] = [p for _, p in rider.taken]
            rows.update(("lots", i) for i, _ in rider.taken)
        moved = [(n, side, side.account.balance) for n, side in enumerate(sides) if shape[n]]

        def done(row: Mapping[str, Any]) -> None:
            for n, side, before in moved:
                if row[f"b{n}"] is None:
                    set_committed_value(side.account, "balance", before)
                    raise _refused(side.account, side.amount)
                set_committed_value(side.account, "balance", int(row[f"b{n}"]))
            if isinstance(rider, TakenLots) and row["lots"] != len(rider.taken):
                # A lot held fewer points than the debit read (never, as the lots are read
                # with the account's lock): run again, to read them afresh.
                raise RetryTransaction()

        for _, side, before in moved:  # as it will stand (a balance this transaction locked)
            set_committed_value(side.account, "balance", before + side.amount)
        part = _EntryAtOnce(shape, type(rider).__name__ if rider else None)
        await defer(self.session, Deferred(part, params, frozenset(rows), done=done, entries=True))
        # The entry as it will be written (the caller takes its id and values), in no
        # session: nothing in the transaction reads an entry back through the identity map.
        return detached(Entry, {"id": entry_id, **values})

    async def _move(self, account: Account, amount: int) -> int:
        """Change a member balance atomically, within [0, MAX_BALANCE]; the new balance."""
        new_balance = await self.session.scalar(_MOVE, {"account": account.id, "amount": amount})
        if new_balance is None:
            raise _refused(account, amount)
        set_committed_value(account, "balance", new_balance)
        return int(new_balance)


_ENTRIES = table_of(Entry)
_ACCOUNTS = table_of(Account)


@functools.cache
def _accounts_locked(count: int) -> Prepared:
    """`count` accounts by id, locked in id order (FOR UPDATE), read fresh."""
    ids = [bindparam(f"account_{n}", type_=BigInteger()) for n in range(count)]
    return Prepared(
        select(*_ACCOUNTS.c)
        .where(_ACCOUNTS.c.id.in_(ids))
        .order_by(_ACCOUNTS.c.id)
        .with_for_update(key_share=True),
        autoflush=True,
    )


_POSTINGS = table_of(Posting)
_LOTS = table_of(Lot)
_LOT_USES = table_of(LotUse)
# What an entry's values name (Journal.post), in its INSERT's order: every column but its id.
ENTRY_VALUES = (
    "kind",
    "program_code",
    "member_id",
    "actor",
    "idempotency_key",
    "occurred_at",
    "business_date",
    "reference",
    "memo",
)
_LOT_VALUES = ("account_id", "points", "remaining", "expires_at", "created_at")


def _lot_values(lot: NewLot) -> dict[str, Any]:
    return {
        "account_id": lot.account_id,
        "points": lot.points,
        "remaining": lot.points,
        "expires_at": lot.expires_at,
        "created_at": lot.created_at,
    }


def _moved(account: ColumnElement[int], amount: ColumnElement[int]) -> Any:
    """An UPDATE moving a member balance by `amount` when it stays within [0, MAX_BALANCE],
    returning the new balance (no row when it would leave them)."""
    balance = _ACCOUNTS.c.balance
    return (
        update(_ACCOUNTS)
        .where(_ACCOUNTS.c.id == account, balance + amount >= 0, balance + amount <= MAX_BALANCE)
        .values(balance=balance + amount)
        .returning(balance)
    )


# SQLite's statements, built once (their parameters given at each call).
_INSERT_ENTRY = insert(Entry).returning(Entry)
_INSERT_POSTINGS = insert(_POSTINGS)
_INSERT_LOT = insert(_LOTS)
_INSERT_LOT_USES = insert(_LOT_USES)
_TAKE_FROM_LOT = (
    update(_LOTS)
    .where(_LOTS.c.id == bindparam("lot", type_=BigInteger()))
    .values(remaining=_LOTS.c.remaining - bindparam("take", type_=BigInteger()))
)
_MOVE = _moved(bindparam("account", type_=BigInteger()), bindparam("amount", type_=BigInteger()))


@dataclass(frozen=True)
class _EntryAtOnce:
    """PostgreSQL's write of an entry whose sides are members where `shape` says, with this
    kind of rider (its class's name), as CTEs (hub.db.StatementPart). Its parameters: the
    entry's id and values (entry_*), account_n and amount_n for each side, and the rider's
    (lot_*, or taken_lots and taken_points); its columns: b{n}, the new balance of each
    member side (NULL where one did not move, and then nothing else is written)."""

    shape: tuple[bool, ...]
    rider: str | None

    def build(self, prefix: str) -> tuple[list[Any], list[Any]]:
        def param(name: str, type_: Any) -> Any:
            return bindparam(f"{prefix}{name}", type_=type_)

        count = len(self.shape)
        accounts = [param(f"account_{n}", BigInteger()) for n in range(count)]
        amounts = [param(f"amount_{n}", BigInteger()) for n in range(count)]
        moved = {
            n: _moved(accounts[n], amounts[n]).cte(f"{prefix}moved_{n}")
            for n, member in enumerate(self.shape)
            if member
        }
        after = {n: select(cte.c.balance).scalar_subquery() for n, cte in moved.items()}
        entry = (
            insert(_ENTRIES)
            .from_select(
                ["id", *ENTRY_VALUES],
                select(
                    param("entry_id", _ENTRIES.c.id.type),
                    *(param(f"entry_{k}", _ENTRIES.c[k].type) for k in ENTRY_VALUES),
                ).where(*(select(cte).exists() for cte in moved.values())),
            )
            .returning(_ENTRIES.c.id)
            .cte(f"{prefix}entry")
        )
        postings = insert(_POSTINGS).from_select(
            ["entry_id", "account_id", "amount", "balance_after"],
            union_all(
                *(
                    select(
                        entry.c.id,
                        accounts[n],
                        amounts[n],
                        after.get(n, cast(null(), BigInteger())),
                    )
                    for n in range(count)
                )
            ),
        )
        riders = [
            ride.cte(f"{prefix}rider_{n}")
            for n, ride in enumerate(_riders_at_once(self.rider, entry, param))
        ]
        ctes = [*moved.values(), entry, postings.cte(f"{prefix}postings"), *riders]
        columns = [balance.label(f"{prefix}b{n}") for n, balance in after.items()]
        if self.rider == TakenLots.__name__:  # how many lots it took from
            taken = select(func.count()).select_from(riders[-1]).scalar_subquery()
            columns.append(taken.label(f"{prefix}lots"))
        return ctes, columns


def _riders_at_once(rider: str | None, entry: CTE, param: Callable[[str, Any], Any]) -> list[Any]:
    """The rider's statements for the entry's one statement: each selects from the entry, so
    it writes nothing when the entry was not written. `param`: a parameter by name and
    type."""
    entry_id = entry.c.id
    if rider == NewLot.__name__:
        return [
            insert(_LOTS).from_select(
                [*_LOT_VALUES, "entry_id"],
                select(*(param(f"lot_{k}", _LOTS.c[k].type) for k in _LOT_VALUES), entry_id),
            )
        ]
    if rider == TakenLots.__name__:
        taken = (
            func.unnest(
                param("taken_lots", ARRAY(BigInteger())),
                param("taken_points", ARRAY(BigInteger())),
            )
            .table_valued("lot_id", "points")
            .render_derived(name="taken")
        )
        return [
            insert(_LOT_USES).from_select(
                ["lot_id", "points", "entry_id"],
                select(taken.c.lot_id, taken.c.points, entry_id).select_from(
                    taken.join(entry, true())
                ),
            ),
            # A lot that no longer holds what it is taken (its read was stale) is not taken
            # from: the rows it updates then fall short of the lots (the entry's `lots`).
            update(_LOTS)
            .where(
                _LOTS.c.id == taken.c.lot_id,
                _LOTS.c.remaining >= taken.c.points,
                select(entry_id).exists(),
            )
            .values(remaining=_LOTS.c.remaining - taken.c.points)
            .returning(_LOTS.c.id),
        ]
    return []


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
