"""What a member session shows and how long it lives, found by the outside review:
a merchant that mints a session for one of its members read every other merchant's
redemptions of that member (contract prices, voucher codes, booking references) through
`viewer.member.redemptions` (F8); a session outlived the revocation of the key that
minted it (F9)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import (
    Api,
    accrue,
    cancel_redemption,
    create_key,
    member_session,
    redeem,
    upsert_reward,
)
from tests.world import World

MINE = """
{ viewer { member { redemptions(first: 10) { edges { node { id fulfillmentRef
    reward { id } } } } } } }"""
PRICED = """
{ viewer { member { redemptions(first: 10) { edges { node { id settlementPrice } } } } } }"""
WHO = "{ viewer { member { id } } }"


@pytest.fixture
async def world(api: Api) -> dict[str, Any]:
    """haowu (PLATFORM, HUB) and jade (JADE); a member of both redeemed a haowu car wash and
    a jade meal, paying with HUB points."""
    world = World(api)
    await world.programs("HUB", "JADE")
    jade = await world.key("MERCHANT", "jade")
    haowu = await world.key("MERCHANT", "haowu")
    await upsert_reward(api, haowu, ref="WASH", kind="SERVICE", title="Car wash", price=100)
    await upsert_reward(api, jade, ref="MEAL", kind="MEAL", title="Dim sum", price=100)
    member = await world.member("Wang Fang", {"HUB": "H-1", "JADE": "J-1"})
    await world.rates(("HUB", "JADE", "1"))
    await accrue(api, member, "HUB", "1000")
    for reward in ("haowu:WASH", "jade:MEAL"):
        made = await redeem(api, member, reward, "HUB")
        assert made["userErrors"] == [], made
    return {"jade": jade, "haowu": haowu, "member": member}


def _rewards(data: dict[str, Any]) -> list[str]:
    edges = data["viewer"]["member"]["redemptions"]["edges"]
    return sorted(e["node"]["reward"]["id"] for e in edges)


async def test_a_merchant_session_shows_only_that_merchants_redemptions(
    api: Api, world: dict[str, Any]
) -> None:
    token = await member_session(api, world["member"], key=world["jade"])
    seen = await api.gql(MINE, key=world["jade"], member_token=token)
    assert _rewards(seen) == ["jade:MEAL"]
    # The platform pays for both with HUB points: it sees both.
    platform = await member_session(api, world["member"], key=world["haowu"])
    both = await api.gql(MINE, key=world["haowu"], member_token=platform)
    assert _rewards(both) == ["haowu:WASH", "jade:MEAL"]


async def test_the_member_sees_its_codes_but_not_the_merchants_contract_prices(
    api: Api, world: dict[str, Any]
) -> None:
    storefront = await create_key(api, "STOREFRONT")
    token = await member_session(api, world["member"], key=world["haowu"])
    own = await api.gql(MINE, key=storefront, member_token=token)
    assert _rewards(own) == ["haowu:WASH", "jade:MEAL"]
    assert all(e["node"]["fulfillmentRef"] for e in own["viewer"]["member"]["redemptions"]["edges"])
    errors = await api.errors(PRICED, key=storefront, member_token=token)
    assert {e["extensions"]["code"] for e in errors} == {"FORBIDDEN"}
    # The reward's merchant and FINANCE see them.
    jade_token = await member_session(api, world["member"], key=world["jade"])
    priced = await api.gql(PRICED, key=world["jade"], member_token=jade_token)
    assert priced["viewer"]["member"]["redemptions"]["edges"][0]["node"]["settlementPrice"]


async def test_revoking_a_key_ends_the_sessions_it_minted(api: Api, world: dict[str, Any]) -> None:
    storefront = await create_key(api, "STOREFRONT")
    made = await api.gql(
        'mutation { createApiKey(input: {role: MERCHANT, merchantId: "jade", label: "temp"}) '
        "{ keyId secret } }"
    )
    temp = made["createApiKey"]
    token = await member_session(api, world["member"], key=temp["secret"])
    assert (await api.gql(WHO, key=storefront, member_token=token))["viewer"]["member"]
    revoked = await api.gql(
        "mutation R($id: ID!) { revokeApiKey(id: $id) { userErrors { code } } }",
        {"id": temp["keyId"]},
    )
    assert revoked["revokeApiKey"]["userErrors"] == []
    response = await api.post(WHO, key=storefront, member_token=token)
    assert response.status_code == 401, response.text


async def test_a_session_a_merchant_minted_shows_what_that_merchant_sees(
    api: Api, world: dict[str, Any]
) -> None:
    """Outside review 2: jade minted a session for its member on its own (no member need be
    present) and read her credit level through viewer."""
    credit = await api.gql(
        "mutation C($id: ID!) { setMemberCredit(memberId: $id, level: EXCELLENT) "
        "{ userErrors { code } } }",
        {"id": world["member"]},
    )
    assert credit["setMemberCredit"]["userErrors"] == []
    own = "{ viewer { member { creditLevel displayName } } }"
    jade_token = await member_session(api, world["member"], key=world["jade"])
    seen = (await api.gql(own, key=world["jade"], member_token=jade_token))["viewer"]["member"]
    assert seen["creditLevel"] is None
    storefront = await create_key(api, "STOREFRONT")
    through = await api.gql(own, key=storefront, member_token=jade_token)
    assert through["viewer"]["member"]["creditLevel"] is None
    # The member in the platform's mall (a session the platform minted) sees both.
    mall = await member_session(api, world["member"], key=world["haowu"])
    mine = (await api.gql(own, key=storefront, member_token=mall))["viewer"]["member"]
    assert mine == {"creditLevel": "EXCELLENT", "displayName": "Wang Fang"}


async def test_a_merchant_session_reads_the_member_as_that_merchant_does(
    api: Api, world: dict[str, Any]
) -> None:
    """Outside review 3: a session jade minted on its own (no member need be present) read
    the member's full name and her accounts, balances and history at every other merchant.
    It reads what jade reads of her; it may still convert into her other programs."""
    read = (
        "{ viewer { member { displayName accounts { program { code } balance } "
        "history(first: 20) { edges { node { program { code } } } } "
        'hub: account(program: "HUB") { balance } } } }'
    )
    by_id = "query($id: ID!) { member(id: $id) { displayName accounts { program { code } } } }"
    await accrue(api, world["member"], "JADE", "50")
    jade_view = (await api.gql(by_id, {"id": world["member"]}, key=world["jade"]))["member"]
    token = await member_session(api, world["member"], key=world["jade"])
    storefront = await create_key(api, "STOREFRONT")
    for key in (world["jade"], storefront):
        seen = (await api.gql(read, key=key, member_token=token))["viewer"]["member"]
        assert seen["displayName"] == jade_view["displayName"] != "Wang Fang"
        assert [a["program"]["code"] for a in seen["accounts"]] == ["JADE"]
        assert {e["node"]["program"]["code"] for e in seen["history"]["edges"]} == {"JADE"}
        assert seen["hub"] is None
    # The platform's session is the member in the universal mall: everything is hers.
    mall = await member_session(api, world["member"], key=world["haowu"])
    mine = (await api.gql(read, key=storefront, member_token=mall))["viewer"]["member"]
    assert mine["displayName"] == "Wang Fang"
    assert sorted(a["program"]["code"] for a in mine["accounts"]) == ["HUB", "JADE"]
    assert {e["node"]["program"]["code"] for e in mine["history"]["edges"]} == {"HUB", "JADE"}
    assert mine["hub"] is not None


ONE = "query($id: ID!) { redemption(id: $id) { id status fulfillmentRef } }"
ALL = "{ viewer { member { redemptions(first: 10) { edges { node { reward { id } } } } } } }"


async def test_a_merchant_session_through_a_storefront_neither_reads_nor_cancels_others(
    api: Api, world: dict[str, Any]
) -> None:
    """Outside attack 4 (H1, H2): a session jade minted on its own, sent with a STOREFRONT
    key, read the member's redemptions at other merchants (booking references, voucher
    codes) and cancelled one of them (the booking destroyed, the points refunded)."""
    storefront = await create_key(api, "STOREFRONT")
    mall = await member_session(api, world["member"], key=world["haowu"])
    listed = await api.gql(MINE, key=storefront, member_token=mall)
    ids = {
        e["node"]["reward"]["id"]: e["node"]["id"]
        for e in listed["viewer"]["member"]["redemptions"]["edges"]
    }
    jade_token = await member_session(api, world["member"], key=world["jade"])
    seen = await api.gql(ALL, key=storefront, member_token=jade_token)
    assert _rewards(seen) == ["jade:MEAL"]
    wash = await api.gql(ONE, {"id": ids["haowu:WASH"]}, key=storefront, member_token=jade_token)
    assert wash["redemption"] is None
    before = await api.gql(ONE, {"id": ids["haowu:WASH"]})
    refused = await cancel_redemption(
        api, ids["haowu:WASH"], key=storefront, member_token=jade_token
    )
    assert [e["code"] for e in refused["userErrors"]] == ["NOT_FOUND"], refused
    assert await api.gql(ONE, {"id": ids["haowu:WASH"]}) == before
    # Its own merchant's redemption it reads and may cancel for the member.
    meal = await api.gql(ONE, {"id": ids["jade:MEAL"]}, key=storefront, member_token=jade_token)
    assert meal["redemption"]["id"] == ids["jade:MEAL"]
    done = await cancel_redemption(api, ids["jade:MEAL"], key=storefront, member_token=jade_token)
    assert done["userErrors"] == [], done
    # The member in the platform's mall reads and cancels every one of hers.
    mine = await api.gql(ONE, {"id": ids["haowu:WASH"]}, key=storefront, member_token=mall)
    assert mine["redemption"]["id"] == ids["haowu:WASH"]
    done = await cancel_redemption(api, ids["haowu:WASH"], key=storefront, member_token=mall)
    assert done["userErrors"] == [], done


async def test_a_paying_merchants_session_cannot_cancel_another_merchants_sale(
    api: Api, world: dict[str, Any]
) -> None:
    """A session jade minted (no member need be present) is jade's word, not the member's:
    it cancels jade's own rewards' redemptions (jade could with its key), not another
    merchant's sale paid with JADE points "at the member's request" (outside attack)."""
    from tests.helpers import balances, set_rate

    member = world["member"]
    await set_rate(api, "JADE", "HUB", "1")
    await accrue(api, member, "JADE", "500")
    paid = await redeem(api, member, "haowu:WASH", "JADE")
    assert paid["userErrors"] == [] and paid["redemption"]["status"] == "CONFIRMED", paid
    before = await balances(api, member)
    token = await member_session(api, member, key=world["jade"])
    storefront = await create_key(api, "STOREFRONT")
    refused = await cancel_redemption(
        api, paid["redemption"]["id"], key=storefront, member_token=token
    )
    assert refused["redemption"] is None, refused
    assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"], refused
    assert await balances(api, member) == before
