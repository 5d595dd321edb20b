"""Idempotency keys are scoped to the merchant (and, for storefronts, to the member
session's member), not to the API key: a retry through another key moves nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import (
    Api,
    accrue,
    balances,
    convert,
    create_key,
    enroll,
    member_session,
    redeem,
    upsert_reward,
)
from tests.world import World


@pytest.fixture
async def world(world: World) -> dict[str, Any]:
    await world.programs("HUB", "JADE", "CLEAR", accrualRate="1")
    await world.rates(("HUB", "JADE", "1"))
    jade = await world.key("MERCHANT", "jade")
    await upsert_reward(world.api, jade, ref="MEAL", kind="MEAL", title="Set meal", price=100)
    member = await world.member("Guo Mei", {"HUB": "H-1", "JADE": "J-1"}, points={"HUB": "1000"})
    return {"member": member, "jade": jade}


async def test_a_conversion_retried_through_another_storefront_key_converts_once(
    api: Api, world: dict[str, Any]
) -> None:
    member = world["member"]
    first_key = await create_key(api, "STOREFRONT")
    second_key = await create_key(api, "STOREFRONT")
    token = await member_session(api, member)
    one = await convert(
        api, member, "HUB", "JADE", 100, key=first_key, member_token=token, idempotency_key="k-1"
    )
    two = await convert(
        api, member, "HUB", "JADE", 100, key=second_key, member_token=token, idempotency_key="k-1"
    )
    assert one["userErrors"] == [] and two["userErrors"] == []
    assert two["conversion"]["id"] == one["conversion"]["id"]
    assert (await balances(api, member))["HUB"] == 900


async def test_a_redemption_retried_through_another_storefront_key_redeems_once(
    api: Api, world: dict[str, Any]
) -> None:
    member = world["member"]
    first_key = await create_key(api, "STOREFRONT")
    second_key = await create_key(api, "STOREFRONT")
    token = await member_session(api, member)
    one = await redeem(
        api, member, "jade:MEAL", "HUB", key=first_key, member_token=token, idempotency_key="r-1"
    )
    two = await redeem(
        api, member, "jade:MEAL", "HUB", key=second_key, member_token=token, idempotency_key="r-1"
    )
    assert two["redemption"]["id"] == one["redemption"]["id"]
    assert (await balances(api, member))["HUB"] == 900


async def test_the_same_key_for_two_members_is_two_requests(
    api: Api, world: dict[str, Any]
) -> None:
    storefront = await create_key(api, "STOREFRONT")
    other = await enroll(api, "HUB", "H-2", "Ma Lin")
    await enroll(api, "JADE", "J-2", member_id=other)
    await accrue(api, other, "HUB", "1000")
    done = []
    for who in (world["member"], other):
        token = await member_session(api, who)
        payload = await convert(
            api, who, "HUB", "JADE", 100, key=storefront, member_token=token, idempotency_key="k"
        )
        assert payload["userErrors"] == []
        done.append(payload["conversion"]["id"])
    assert done[0] != done[1]
    assert (await balances(api, other))["HUB"] == 900


async def test_an_accrual_retried_through_another_key_of_the_merchant_returns_the_first(
    api: Api, world: dict[str, Any]
) -> None:
    member = world["member"]
    second = await create_key(api, "MERCHANT", "jade")
    one = await accrue(api, member, "JADE", "50", order="o-1", key=world["jade"])
    two = await accrue(api, member, "JADE", "50", order="o-1", key=second)
    assert one["userErrors"] == [] and two["userErrors"] == []
    assert two["entry"]["id"] == one["entry"]["id"]
    # Another merchant's identical key is another request.
    clearview = await create_key(api, "MERCHANT", "clearview")
    await enroll(api, "CLEAR", "C-1", member_id=member)
    three = await accrue(
        api, member, "CLEAR", "50", order="o-1", key=clearview, idempotency_key="accrue-o-1"
    )
    assert three["userErrors"] == [] and three["entry"]["program"]["code"] == "CLEAR"


async def test_a_conversion_retried_through_another_admin_key_converts_once(
    api: Api, world: dict[str, Any]
) -> None:
    """The platform's ADMIN keys are one caller (an outside tester's find: a retry made while
    an admin tool rotated its key converted twice)."""
    member = world["member"]
    first_key = await create_key(api, "ADMIN")
    second_key = await create_key(api, "ADMIN")
    one = await convert(api, member, "HUB", "JADE", 100, key=first_key, idempotency_key="a-1")
    two = await convert(api, member, "HUB", "JADE", 100, key=second_key, idempotency_key="a-1")
    assert one["userErrors"] == [] and two["userErrors"] == []
    assert two["conversion"]["id"] == one["conversion"]["id"]
    assert (await balances(api, member))["HUB"] == 900


async def test_a_key_replayed_through_a_narrower_session_is_not_its_answer(
    api: Api, world: dict[str, Any]
) -> None:
    """A session a merchant minted may spend only that merchant's points and sees only what
    touches them: replaying a universal session's key through it (same member, same input)
    is its own request, refused as such, not the first one's answer (outside attack)."""
    member = world["member"]
    storefront = await create_key(api, "STOREFRONT")
    universal = await member_session(api, member)
    narrow = await member_session(api, member, key=world["jade"])
    one = await convert(
        api, member, "HUB", "JADE", 100, key=storefront, member_token=universal, idempotency_key="u"
    )
    assert one["userErrors"] == [] and one["conversion"]["status"] == "COMPLETED"
    two = await convert(
        api, member, "HUB", "JADE", 100, key=storefront, member_token=narrow, idempotency_key="u"
    )
    assert two["conversion"] is None, two
    assert [e["code"] for e in two["userErrors"]] == ["FORBIDDEN"], two
    assert (await balances(api, member))["HUB"] == 900
