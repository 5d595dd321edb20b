"""A request never waits, inside its transaction, for a connection of the same pool.

Outside attack (stop 34, helper-63): after setExchangeRate, once the caches were stale, 80
concurrent convertPoints on PostgreSQL hung for 30 to 90 s and about 50 of them (and an
unrelated query sent meanwhile) failed INTERNAL with "QueuePool limit of size 10 overflow
20 reached". Each conversion held a connection in its open transaction while it waited for
the rates to load, and the load asked the same pool for one more: with every connection held
by a waiter, the load waited for the pool's timeout. Here the pool is one connection: any
request that asks for a second connection while it holds one waits out the pool's timeout
and fails.
"""

from __future__ import annotations

import asyncio

import pytest

from hub.config import Settings
from tests.helpers import (
    QUOTE,
    Api,
    balances,
    cancel_redemption,
    convert,
    quiet_settings,
    redeem,
    set_rate,
    upsert_reward,
    verify_ledger,
)
from tests.world import World


@pytest.fixture
def settings(db_url: str) -> Settings:
    return quiet_settings(db_url, db_pool_size=1, db_pool_overflow=0, db_pool_timeout_seconds=3)


async def test_a_burst_of_conversions_after_a_rate_change_gets_its_rates(
    api: Api, world: World, db_url: str
) -> None:
    await world.programs("SKYMILES", "LOTUS", SKYMILES={"pointValue": "0.08"})
    members = [
        await world.member(
            f"Member {i}", {"SKYMILES": f"SK-{i}", "LOTUS": f"L-{i}"}, {"SKYMILES": "1000"}
        )
        for i in range(8)
    ]
    await set_rate(api, "SKYMILES", "LOTUS", "1.5")
    await convert(api, members[0], "SKYMILES", "LOTUS", 100)  # the rates are kept now
    await set_rate(api, "SKYMILES", "LOTUS", "2")  # and dropped again
    results = await asyncio.gather(
        *[convert(api, member, "SKYMILES", "LOTUS", 100) for member in members]
    )
    assert [r["userErrors"] for r in results] == [[]] * 8
    assert [r["conversion"]["status"] for r in results] == ["COMPLETED"] * 8
    assert await balances(api, members[1]) == {"LOTUS": 200, "SKYMILES": 900}
    assert await verify_ledger(db_url) == []


async def test_the_members_path_runs_on_one_connection(api: Api, world: World, db_url: str) -> None:
    """Enrolment, accrual, a quote and a conversion, a hosted reward redeemed and cancelled,
    the rewards page and balances, each with a fresh load of what the process keeps."""
    await world.programs("HUB", "SKYMILES", "JADE", SKYMILES={"pointValue": "0.08"})
    accounts = {"SKYMILES": "SK-1", "HUB": "H-1", "JADE": "J-1"}
    member = await world.member("Li Na", accounts, {"SKYMILES": "1000", "JADE": "500"})
    await set_rate(api, "SKYMILES", "HUB", "0.5")
    quoted = await api.gql(
        QUOTE, {"input": {"memberId": member, "from": "SKYMILES", "to": "HUB", "points": 200}}
    )
    converted = await convert(
        api, member, "SKYMILES", "HUB", 200, quote_id=quoted["quoteConversion"]["quote"]["id"]
    )
    assert converted["userErrors"] == []
    await upsert_reward(api, ref="TEA", kind="MEAL", title="Tea", price=100, merchantId="jade")
    before = await balances(api, member)
    paid = await redeem(api, member, "jade:TEA", "JADE")
    assert paid["userErrors"] == [], paid
    cancelled = await cancel_redemption(api, paid["redemption"]["id"])
    assert cancelled["userErrors"] == [], cancelled
    # No rate leads from JADE to SKYMILES: the counters are read before it is refused.
    refused = await redeem(api, member, "jade:TEA", "SKYMILES")
    assert [e["code"] for e in refused["userErrors"]] == ["RATE_NOT_CONFIGURED"], refused
    page = await api.gql('{ rewards(first: 5) { edges { node { id priceIn(program: "JADE") } } } }')
    assert page["rewards"]["edges"] == [{"node": {"id": "jade:TEA", "priceIn": 100}}]
    assert await balances(api, member) == before | {"HUB": 100, "SKYMILES": 800}
    assert await verify_ledger(db_url) == []
