"""hub.mall.inventory: stock and slot places taken and given back by one UPDATE each, the
row the transaction holds kept true (as the ORM's UPDATE with its evaluation kept it); a
give-back runs as its transaction commits, its last statement."""

from __future__ import annotations

import pytest

from hub.db import Database, get_row, send_deferred
from hub.errors import OutOfStock
from hub.mall import inventory
from hub.models import Reward
from tests.helpers import Api, upsert_reward
from tests.world import World


async def test_stock_is_taken_while_there_is_enough_and_given_back(
    api: Api, world: World, db_url: str
) -> None:
    await world.programs("JADE")
    await upsert_reward(
        api, ref="TEA", kind="MEAL", title="Tea", price=5, stock=3, merchantId="jade"
    )
    db = Database(db_url)
    try:
        async with db.write() as session:
            reward = await get_row(session, Reward, "jade:TEA")
            assert reward is not None and reward.stock == 3
            # Deferred on PostgreSQL: the UPDATE goes with the transaction's next statement.
            await inventory.take(session, reward, None, 2)
            await send_deferred(session)
            assert reward.stock == 1  # the held row says what the database now has
            with pytest.raises(OutOfStock):
                await inventory.take(session, reward, None, 2)
                await send_deferred(session)
            assert reward.stock == 1
            await inventory.give_back(session, reward.id, None, 2)
            assert reward.stock == 1  # not yet: as the transaction commits
        assert reward.stock == 3
        async with db.read() as session:
            stored = await session.get(Reward, "jade:TEA")
            assert stored is not None and stored.stock == 3
    finally:
        await db.dispose()
