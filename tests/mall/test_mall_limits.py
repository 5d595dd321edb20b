"""A mall payment through a rate counts against that rate's daily conversion limit, as a
conversion does (issue 15, defect 8): the mall is not a way around the limit."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import (
    Api,
    accrue,
    balances,
    cancel_redemption,
    convert,
    create_key,
    enroll,
    obligations,
    redeem,
    register,
    set_rate,
    upsert_reward,
    verify_ledger,
)


@pytest.fixture
async def limited(api: Api) -> dict[str, Any]:
    """HUB -> CLEAR at 1:1, at most 1,000 HUB a member a day; a 7,500-CLEAR reward."""
    await register(api, "haowu", "HUB", category="PLATFORM", pointValue="0.10")
    await register(api, "clearview", "CLEAR", category="RETAIL", pointValue="0.10")
    key = await create_key(api, "MERCHANT", "clearview")
    await upsert_reward(api, key, ref="FRAMES", kind="GOODS", title="Frames", price=7500)
    await upsert_reward(api, key, ref="CLOTH", kind="GOODS", title="Lens cloth", price=400)
    await set_rate(api, "HUB", "CLEAR", "1", dailyLimitPerMember=1000)
    member = await enroll(api, "HUB", "H-1", "Liu Yang")
    await enroll(api, "CLEAR", "C-1", member_id=member)
    await accrue(api, member, "HUB", "20000")
    return {"member": member, "key": key}


async def test_a_redemption_through_a_used_up_rate_is_refused_like_a_conversion(
    api: Api, limited: dict[str, Any], db_url: str
) -> None:
    member = limited["member"]
    assert (await convert(api, member, "HUB", "CLEAR", 1000))["userErrors"] == []
    over = await convert(api, member, "HUB", "CLEAR", 1)
    assert over["userErrors"][0]["code"] == "LIMIT_EXCEEDED"
    # 2 x 7,500 CLEAR = 15,000 HUB through the same rate.
    refused = await redeem(api, member, "clearview:FRAMES", "HUB", quantity=2)
    assert refused["redemption"] is None
    assert [e["code"] for e in refused["userErrors"]] == ["LIMIT_EXCEEDED"]
    assert refused["userErrors"][0]["field"] == ["input", "quantity"]
    assert (await balances(api, member))["HUB"] == 19000
    assert [o["kind"] for o in await obligations(db_url)] == ["CONVERSION"]
    mine = await api.gql(
        "query M($id: ID!) { member(id: $id) { redemptions { edges { node { id } } } } }",
        {"id": member},
    )
    assert mine["member"]["redemptions"]["edges"] == []
    assert await verify_ledger(db_url) == []


async def test_what_the_mall_paid_through_a_rate_leaves_less_to_convert(
    api: Api, limited: dict[str, Any], db_url: str
) -> None:
    member = limited["member"]
    paid = await redeem(api, member, "clearview:CLOTH", "HUB", quantity=2)  # 800 HUB
    assert paid["userErrors"] == [], paid
    refused = await convert(api, member, "HUB", "CLEAR", 300)
    assert refused["userErrors"][0]["code"] == "LIMIT_EXCEEDED"
    assert "200 are left today" in refused["userErrors"][0]["message"]
    assert (await convert(api, member, "HUB", "CLEAR", 200))["userErrors"] == []
    # A cancelled redemption gave its points back: like a reversed conversion, it no
    # longer counts.
    cancelled = await cancel_redemption(api, paid["redemption"]["id"], key=limited["key"])
    assert cancelled["redemption"]["status"] == "CANCELLED"
    assert (await convert(api, member, "HUB", "CLEAR", 800))["userErrors"] == []
    assert await verify_ledger(db_url) == []
