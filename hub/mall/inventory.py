"""A hosted reward's stock and a slot's places: taken by one UPDATE when there are enough
(never oversold, under any concurrency), given back by one. Each is a Core statement
prepared once (an ORM UPDATE also evaluated its WHERE against every row the session held:
a third of the statement's cost), and the row the transaction holds, if it holds it, is
given the count the database now has, as that evaluation gave it.

A reward's row is what every redemption of it and every cancellation contends for: the
UPDATE locks it to the end of the transaction. So each is its transaction's last
statement, and the row stays locked for the commit alone: a redemption writes everything
else first (write_pending), and a give-back runs as the transaction commits (last)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from hub.db import Prepared, held_row, last
from hub.errors import OutOfStock, SlotUnavailable
from hub.models import Reward, Slot
from hub.models.base import table_of


class _Counter:
    """One counting column of a table: what taking and giving back run."""

    def __init__(self, model: type[Any], column: str, *givable: ColumnElement[bool]) -> None:
        table = table_of(model)
        count, key = table.c[column], table.c.id == bindparam("row_id")
        qty = bindparam("qty", type_=count.type)
        self.model, self.column = model, column
        self._take = Prepared(
            update(table).where(key, count >= qty).values({count: count - qty}).returning(count)
        )
        self._give = Prepared(
            update(table)
            .where(key, count.is_not(None), *givable)
            .values({count: count + qty})
            .returning(count)
        )

    async def take(self, session: AsyncSession, row_id: str, qty: int) -> bool:
        """Whether the row had `qty` to take (and now has that many fewer)."""
        return await self._moved(session, self._take, row_id, qty)

    async def give(self, session: AsyncSession, row_id: str, qty: int) -> None:
        await self._moved(session, self._give, row_id, qty)

    async def _moved(self, session: AsyncSession, run: Prepared, row_id: str, qty: int) -> bool:
        left = await run.row(session, {"row_id": row_id, "qty": qty})
        if left is None:
            return False
        held = held_row(session, self.model, row_id)
        if held is not None:
            set_committed_value(held, self.column, left[self.column])
        return True


_STOCK = _Counter(Reward, "stock", table_of(Reward).c.source == "HOSTED")
_PLACES = _Counter(Slot, "remaining")


async def take(session: AsyncSession, reward: Reward, slot: Slot | None, qty: int) -> None:
    """Take stock and a place in the slot, or raise (and the caller's transaction, with
    whatever it took, is rolled back)."""
    if reward.stock is not None:
        # A partner's reward: the stock its connector last listed, checked, not taken here.
        if reward.source == "HOSTED":
            enough = await _STOCK.take(session, reward.id, qty)
        else:
            enough = reward.stock >= qty
        if not enough:
            if qty > 1:
                raise OutOfStock(
                    f"Fewer than {qty} of {reward.title} are left; ask for fewer.",
                    field=("quantity",),
                )
            raise OutOfStock(f"{reward.title} is out of stock.", field=("reward_id",))
    if (
        slot is not None
        and slot.remaining is not None
        and not await _PLACES.take(session, slot.id, qty)
    ):
        if qty > 1:
            raise SlotUnavailable(
                f"That slot has fewer than {qty} places left; ask for fewer, or pick another.",
                field=("slot_id",),
            )
        raise SlotUnavailable("That slot is full; pick another.", field=("slot_id",))


async def give_back(session: AsyncSession, reward_id: str, slot_id: str | None, qty: int) -> None:
    """A redemption that did not happen returns its units of a hosted reward's stock and its
    places in the slot (a count of null, no limit, is left so), as the transaction commits
    (nothing it does next waits on them)."""

    async def give() -> None:
        await _STOCK.give(session, reward_id, qty)
        if slot_id:
            await _PLACES.give(session, slot_id, qty)

    await last(session, give)
