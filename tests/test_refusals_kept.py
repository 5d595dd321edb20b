"""A refusal is a request's first result: the same idempotency key with the same input is
refused alike afterwards, however the world changed (an outside attack: a storefront that
retried a redemption refused as out of stock, after a restock, bought it and charged the
member). A new key is a new request."""

from __future__ import annotations

from typing import Any

from hub.config import Settings
from tests.helpers import (
    Api,
    accrue,
    balances,
    enroll,
    redeem,
    register,
    running_app,
    upsert_reward,
    verify_ledger,
)


async def _member(api: Api) -> str:
    await register(api, "haowu", "HUB", category="PLATFORM")
    await register(api, "clear", "CLEAR")
    member = await enroll(api, "CLEAR", "C-1")
    assert (await accrue(api, member, "CLEAR", "1000"))["userErrors"] == []
    return member


def _refused(done: dict[str, Any]) -> str:
    assert done["redemption"] is None, done
    return str(done["userErrors"][0]["code"])


async def test_a_redemption_refused_out_of_stock_stays_refused_under_its_key(
    settings: Settings,
) -> None:
    async with running_app(settings) as api:
        member = await _member(api)
        rare = dict(ref="RARE", kind="GOODS", title="Rare", price=100, merchantId="clear")
        await upsert_reward(api, **rare, stock=0)
        first = await redeem(api, member, "clear:RARE", "CLEAR", idempotency_key="rare-1")
        assert _refused(first) == "OUT_OF_STOCK"
        await upsert_reward(api, **rare, stock=1)
        again = await redeem(api, member, "clear:RARE", "CLEAR", idempotency_key="rare-1")
        assert again["userErrors"] == first["userErrors"]
        assert (await balances(api, member))["CLEAR"] == 1000
        new = await redeem(api, member, "clear:RARE", "CLEAR", idempotency_key="rare-2")
        assert new["redemption"]["status"] == "CONFIRMED", new
        assert (await balances(api, member))["CLEAR"] == 900
        assert await verify_ledger(settings.database_url) == []


async def test_a_redemption_of_a_reward_not_found_stays_refused_under_its_key(
    settings: Settings,
) -> None:
    async with running_app(settings) as api:
        member = await _member(api)
        first = await redeem(api, member, "clear:LATER", "CLEAR", idempotency_key="later-1")
        assert _refused(first) == "NOT_FOUND"
        await upsert_reward(
            api, ref="LATER", kind="GOODS", title="Later", price=100, stock=5, merchantId="clear"
        )
        again = await redeem(api, member, "clear:LATER", "CLEAR", idempotency_key="later-1")
        assert again["userErrors"] == first["userErrors"]
        assert (await balances(api, member))["CLEAR"] == 1000


async def test_a_refusal_of_the_input_is_not_kept(settings: Settings) -> None:
    """INVALID_INPUT is the input's own: the same input is refused alike without a record
    (and an IDEMPOTENCY_CONFLICT for other input under the key would mislead)."""
    async with running_app(settings) as api:
        member = await _member(api)
        await upsert_reward(
            api, ref="TEA", kind="GOODS", title="Tea", price=100, stock=5, merchantId="clear"
        )
        bad = await redeem(api, member, "clear:TEA", "CLEAR", quantity=0, idempotency_key="tea-1")
        assert _refused(bad) == "INVALID_INPUT"
        fixed = await redeem(api, member, "clear:TEA", "CLEAR", idempotency_key="tea-1")
        assert fixed["redemption"]["status"] == "CONFIRMED", fixed
