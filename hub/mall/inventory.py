"""A hosted reward's stock and a slot's places: taken by one UPDATE when there are enough
(never oversold, under any concurrency), given back by one. Each is a Core statement
prepared once (an ORM UPDATE also evaluated its WHERE against every row the session held:
a third of the statement's cost), and the row the transaction holds, if it holds it, is
given the count the database now has, as that evaluation gave it.

A reward's row is what every redemption of it and every cancellation contends for: the
UPDATE locks it to the end of the transaction. So each is its transaction's last
statement, and the row stays locked for the commit alone: on PostgreSQL it is deferred
(hub.db.defer) and goes with the transaction's other last writes in the one statement
sent as it commits; elsewhere a redemption writes everything else first (write_pending),
and a give-back runs as the transaction commits (last)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from hub.db import Deferred, Prepared, defer, defers, held_row, last
from hub.errors import OutOfStock, SlotUnavailable
from hub.models import Reward, Slot
from hub.models.base import table_of


class _Counter:
    """One counting column of a table: what taking and giving back run."""

    def __init__(self, model: type[Any], column: str, *givable: ColumnElement[bool]) -> None:
        self.model, self.column = model, column
        self.table = table_of(model)
        self._givable = givable
        self._take = Prepared(self.update(taking=True, prefix=""))
        self._give = Prepared(self.update(taking=False, prefix=""))

    def update(self, *, taking: bool, prefix: str) -> Any:
        """The UPDATE taking (giving back) `qty` of row `row_id`, returning the count left;
        its parameters' names start with `prefix`."""
        count = self.table.c[self.column]
        key = self.table.c.id == bindparam(f"{prefix}row_id")
        qty = bindparam(f"{prefix}qty", type_=count.type)
        if taking:
            moved = update(self.table).where(key, count >= qty).values({count: count - qty})
        else:
            moved = update(self.table).where(key, count.is_not(None), *self._givable)
            moved = moved.values({count: count + qty})
        return moved.returning(count)

    async def take(
        self, session: AsyncSession, row_id: str, qty: int, refused: Callable[[], Exception]
    ) -> None:
        """Take `qty` of the row's count, or raise `refused()` (where the write is deferred,
        hub.db.defer, it raises as the write is sent, and the transaction fails there)."""
        await self._moved(session, row_id, qty, taking=True, refused=refused)

    async def give(self, session: AsyncSession, row_id: str, qty: int) -> None:
        await self._moved(session, row_id, qty, taking=False)

    async def _moved(
        self,
        session: AsyncSession,
        row_id: str,
        qty: int,
        *,
        taking: bool,
        refused: Callable[[], Exception] | None = None,
    ) -> None:
        def done(left: Mapping[str, Any] | None) -> None:
            count = None if left is None else left[self.column]
            if count is None:  # (a give-back of a null count, no limit, moves nothing)
                if refused is not None:
                    raise refused()
                return
            held = held_row(session, self.model, row_id)
            if held is not None:
                set_committed_value(held, self.column, count)

        params = {"row_id": row_id, "qty": qty}
        if defers(session):
            part = _CountMoved(self, taking)
            rows = frozenset([(self.table.name, row_id)])
            await defer(session, Deferred(part, params, rows, done=done))
            return
        done(await (self._take if taking else self._give).row(session, params))


@dataclass(frozen=True)
class _CountMoved:
    """A count's UPDATE as a deferred write's CTE (hub.db.StatementPart); its column: the
    count left (NULL when nothing moved)."""

    counter: _Counter
    taking: bool

    def build(self, prefix: str) -> tuple[list[Any], list[Any]]:
        moved = self.counter.update(taking=self.taking, prefix=prefix).cte(f"{prefix}moved")
        left = select(moved.c[self.counter.column]).scalar_subquery()
        return [moved], [left.label(f"{prefix}{self.counter.column}")]


_STOCK = _Counter(Reward, "stock", table_of(Reward).c.source == "HOSTED")
_PLACES = _Counter(Slot, "remaining")


async def take(session: AsyncSession, reward: Reward, slot: Slot | None, qty: int) -> None:
    """Take stock and a place in the slot, or raise (and the caller's transaction, with
    whatever it took, is rolled back)."""

    def sold_out() -> OutOfStock:
        if qty > 1:
            return OutOfStock(
                f"Fewer than {qty} of {reward.title} are left; ask for fewer.",
                field=("quantity",),
            )
        return OutOfStock(f"{reward.title} is out of stock.", field=("reward_id",))

    def full() -> SlotUnavailable:
        if qty > 1:
            return SlotUnavailable(
                f"That slot has fewer than {qty} places left; ask for fewer, or pick another.",
                field=("slot_id",),
            )
        return SlotUnavailable("That slot is full; pick another.", field=("slot_id",))

    if reward.stock is not None:
        # A partner's reward: the stock its connector last listed, checked, not taken here.
        if reward.source == "HOSTED":
            await _STOCK.take(session, reward.id, qty, sold_out)
        elif reward.stock < qty:
            raise sold_out()
    if slot is not None and slot.remaining is not None:
        await _PLACES.take(session, slot.id, qty, full)


async def give_back(session: AsyncSession, reward_id: str, slot_id: str | None, qty: int) -> None:
    """A redemption that did not happen returns its units of a hosted reward's stock and its
    places in the slot (a count of null, no limit, is left so), as the transaction commits
    (nothing it does next waits on them)."""

    async def give() -> None:
        await _STOCK.give(session, reward_id, qty)
        if slot_id:
            await _PLACES.give(session, slot_id, qty)

    if defers(session):  # deferred, they are sent with the transaction's last statement
        await give()
    else:
        await last(session, give)
