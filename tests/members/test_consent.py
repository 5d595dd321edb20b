"""hub/consent.py through the API: linking needs the member's consent, a session spends what
its minter may debit, a session is opened only for the minter's members, and a connected
partner confirms a membership number before the hub links it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest

from hub.config import Settings
from tests.helpers import (
    ENROLL,
    QUOTE,
    Api,
    accrue,
    balances,
    convert,
    create_key,
    enroll,
    member_session,
    redeem,
    register,
    running_app,
    set_rate,
    upsert_reward,
)
from tests.partners import Partners, partners, register_connected
from tests.world import World

MINT = """
mutation($m: ID!) { createMemberSession(memberId: $m) {
  token expiresAt userErrors { field message code } } }"""


def _link(program: str, ref: str, member: str, name: str = "Wang Fang") -> dict[str, Any]:
    return {
        "input": {"program": program, "externalRef": ref, "displayName": name, "memberId": member}
    }


async def _accounts(api: Api, member: str) -> dict[str, str]:
    data = await api.gql(
        "query($m: ID!) { member(id: $m) { accounts { program { code } externalRef } } }",
        {"m": member},
    )
    return {a["program"]["code"]: a["externalRef"] for a in data["member"]["accounts"]}


# ---------------------------------------------------------------- linking needs consent


async def test_linking_an_existing_member_needs_the_members_session_or_admin(api: Api) -> None:
    await World(api).programs("HUB", "JADE", "LOTUS")
    jade = await create_key(api, "MERCHANT", "jade")
    lotus = await create_key(api, "MERCHANT", "lotus")
    member = await enroll(api, "JADE", "J-1", "Wang Fang", key=jade)
    other = await enroll(api, "JADE", "J-2", "Li Wei", key=jade)
    others_token = await member_session(api, other, key=jade)

    for token in (None, others_token):
        refused = await api.gql(
            ENROLL, _link("LOTUS", "L-1", member), key=lotus, member_token=token
        )
        assert refused["enrollMember"]["member"] is None
        [error] = refused["enrollMember"]["userErrors"]
        assert (error["code"], error["field"]) == ("CONSENT_REQUIRED", ["input", "memberId"])
        assert "X-Member-Token" in error["message"]
    assert await _accounts(api, member) == {"JADE": "J-1"}
    # Nothing was written: the membership number is still free.
    free = await api.gql('{ memberByRef(program: "LOTUS", externalRef: "L-1") { id } }')
    assert free["memberByRef"] is None

    # A session jade minted is jade's word, not hers (jade needs no member present to mint
    # one): lotus may not link her with it (outside attack 4, M1).
    jades = await member_session(api, member, key=jade)
    refused = await api.gql(ENROLL, _link("LOTUS", "L-1", member), key=lotus, member_token=jades)
    assert refused["enrollMember"]["userErrors"][0]["code"] == "CONSENT_REQUIRED"
    assert await _accounts(api, member) == {"JADE": "J-1"}
    # The member consents in the universal mall: a session the platform or ADMIN minted.
    mine = await member_session(api, member)
    linked = await api.gql(ENROLL, _link("LOTUS", "L-1", member), key=lotus, member_token=mine)
    assert linked["enrollMember"]["userErrors"] == []
    # Her session is her consent to the link, not lotus's way to read her as she reads
    # herself (her credit level, her full name: outside attack helper-78): the answer, and
    # lotus's key alone, read its new member masked, as any merchant.
    assert linked["enrollMember"]["member"] == {"id": member, "displayName": "W********"}
    by_lotus = await api.gql(
        "query($id: ID!) { member(id: $id) { displayName } }", {"id": member}, key=lotus
    )
    assert by_lotus["member"] == {"displayName": "W********"}
    # ADMIN links without a session.
    await enroll(api, "HUB", "H-1", member_id=member)
    assert await _accounts(api, member) == {"JADE": "J-1", "LOTUS": "L-1", "HUB": "H-1"}
    # A new member needs no consent but its own; FINANCE cannot present a member token.
    await enroll(api, "LOTUS", "L-2", "New Guest", key=lotus)
    finance = await create_key(api, "FINANCE")
    response = await api.post("{ viewer { role } }", key=finance, member_token=mine)
    assert response.status_code == 401


async def test_birth_date_is_stored_and_checked(api: Api, db_url: str) -> None:
    from hub.db import Database
    from hub.models import Member

    await register(api, "jade", "JADE", category="RESTAURANT")
    refused = await api.gql(
        ENROLL,
        {
            "input": {
                "program": "JADE",
                "externalRef": "J-1",
                "displayName": "x",
                "birthDate": "2999-01-01",
            }
        },
    )
    assert refused["enrollMember"]["userErrors"][0]["field"] == ["input", "birthDate"]
    data = await api.gql(
        ENROLL,
        {
            "input": {
                "program": "JADE",
                "externalRef": "J-1",
                "displayName": "x",
                "birthDate": "1990-05-17",
            }
        },
    )
    member = data["enrollMember"]["member"]["id"]
    db = Database(db_url)
    try:
        async with db.read() as session:
            row = await session.get(Member, member)
            assert row is not None and str(row.birth_date) == "1990-05-17"
    finally:
        await db.dispose()


# ---------------------------------------------------------------- who may open a session


async def test_a_session_is_opened_only_for_a_member_of_the_minters_programs(api: Api) -> None:
    await World(api).programs("HUB", "JADE", "LOTUS")
    lotus = await create_key(api, "MERCHANT", "lotus")
    haowu = await create_key(api, "MERCHANT", "haowu")
    jade_only = await enroll(api, "JADE", "J-1")
    for key in (lotus, haowu):
        data = await api.gql(MINT, {"m": jade_only}, key=key)
        payload = data["createMemberSession"]
        assert payload["token"] is None
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
            ("FORBIDDEN", ["memberId"])
        ]
    # An unknown member is not told apart from a stranger.
    unknown = await api.gql(MINT, {"m": "mbr_nobody"}, key=lotus)
    assert unknown["createMemberSession"]["userErrors"][0]["code"] == "FORBIDDEN"
    admin = await api.gql(MINT, {"m": "mbr_nobody"})
    assert admin["createMemberSession"]["userErrors"][0]["code"] == "NOT_FOUND"


async def test_a_token_that_does_not_say_who_minted_it_is_refused(api: Api) -> None:
    await register(api, "jade", "JADE", category="RESTAURANT")
    member = await enroll(api, "JADE", "J-1")
    storefront = await create_key(api, "STOREFRONT")
    tokens = api.app.state.runtime.tokens
    # Signed with the hub's own key, shaped as tokens were before sessions were scoped.
    old = jwt.encode(
        {"sub": member, "aud": "hub:member-session", "exp": 9_999_999_999, "by": "key_x"},
        tokens._key,
        algorithm="HS256",
    )
    response = await api.post("{ viewer { role } }", key=storefront, member_token=old)
    assert response.status_code == 401


# ---------------------------------------------------------------- what a session may spend


@pytest.fixture
async def travel(api: Api) -> dict[str, Any]:
    """A member of the platform's HUB, the lotus hotel and the skyair airline (all hosted
    here), with points in each; rates between them; a reward at each merchant."""
    await register(api, "haowu", "HUB", category="PLATFORM")
    await register(api, "lotus", "LOTUS", category="HOTEL")
    await register(api, "skyair", "MILES", category="AIRLINE")
    for source, target in [
        ("LOTUS", "MILES"),
        ("MILES", "LOTUS"),
        ("HUB", "LOTUS"),
        ("LOTUS", "HUB"),
        ("HUB", "MILES"),
    ]:
        await set_rate(api, source, target, "1")
    keys = {
        "lotus": await create_key(api, "MERCHANT", "lotus"),
        "haowu": await create_key(api, "MERCHANT", "haowu"),
        "storefront": await create_key(api, "STOREFRONT"),
    }
    await upsert_reward(api, keys["lotus"], ref="LATE", kind="GOODS", title="Late", price=50)
    await upsert_reward(
        api, ref="LOUNGE", kind="GOODS", title="Lounge", price=50, merchantId="skyair"
    )
    member = await enroll(api, "LOTUS", "L-1", "Wang Fang")
    for code, ref in (("HUB", "H-1"), ("MILES", "M-1")):
        await enroll(api, code, ref, member_id=member)
    for code in ("LOTUS", "HUB", "MILES"):
        await accrue(api, member, code, "1000")
    return {"keys": keys, "member": member}


async def _convert(api: Api, world: dict[str, Any], token: str, source: str, target: str) -> Any:
    return await convert(
        api,
        world["member"],
        source,
        target,
        100,
        key=world["keys"]["storefront"],
        member_token=token,
    )


async def test_a_merchants_session_credits_any_program_but_debits_only_its_own(
    api: Api, travel: dict[str, Any]
) -> None:
    member, keys = travel["member"], travel["keys"]
    hotel = await member_session(api, member, key=keys["lotus"])
    # "Convert my hotel points into miles" from the hotel's app.
    out = await _convert(api, travel, hotel, "LOTUS", "MILES")
    assert out["userErrors"] == [] and out["conversion"]["status"] == "COMPLETED"
    before = await balances(api, member)
    assert before == {"LOTUS": 900, "HUB": 1000, "MILES": 1100}
    # From another merchant's program, or the platform's: refused, nothing moved.
    for source, target in (("MILES", "LOTUS"), ("HUB", "LOTUS"), ("HUB", "MILES")):
        refused = await _convert(api, travel, hotel, source, target)
        assert refused["conversion"] is None
        [error] = refused["userErrors"]
        assert (error["code"], error["field"]) == ("FORBIDDEN", ["input", "from"])
        assert "lotus" in error["message"] and source in error["message"]
        quoted = await api.gql(
            QUOTE,
            {"input": {"memberId": member, "from": source, "to": target, "points": 100}},
            key=keys["storefront"],
            member_token=hotel,
        )
        assert quoted["quoteConversion"]["userErrors"][0]["code"] == "FORBIDDEN"
    # A redemption paid with another merchant's points: refused; with its own: fine.
    for reward, pay_with in (("lotus:LATE", "HUB"), ("skyair:LOUNGE", "MILES")):
        refused = await redeem(
            api, member, reward, pay_with, key=keys["storefront"], member_token=hotel
        )
        assert refused["redemption"] is None
        assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [
            ("FORBIDDEN", ["input", "payWith"])
        ]
    assert await balances(api, member) == before
    paid = await redeem(
        api, member, "skyair:LOUNGE", "LOTUS", key=keys["storefront"], member_token=hotel
    )
    assert paid["userErrors"] == [] and paid["redemption"]["status"] == "CONFIRMED"
    assert await balances(api, member) == {**before, "LOTUS": before["LOTUS"] - 50}


async def test_a_platform_or_admin_session_spends_every_program(
    api: Api, travel: dict[str, Any]
) -> None:
    member, keys = travel["member"], travel["keys"]
    for minter in (keys["haowu"], None):
        token = await member_session(api, member, **({"key": minter} if minter else {}))
        for source, target in (("MILES", "LOTUS"), ("HUB", "MILES"), ("LOTUS", "HUB")):
            done = await _convert(api, travel, token, source, target)
            assert done["userErrors"] == [], (minter, source, done)
        paid = await redeem(
            api, member, "lotus:LATE", "HUB", key=keys["storefront"], member_token=token
        )
        assert paid["userErrors"] == []
    assert await balances(api, member) == {"LOTUS": 1000, "HUB": 900, "MILES": 1000}


# ---------------------------------------------------------------- a connected partner confirms


@pytest.fixture
async def live() -> AsyncIterator[Partners]:
    async with partners() as found:
        await found.start("skyair", "AIRLINE")
        yield found


@pytest.fixture
async def hub(settings: Settings, live: Partners) -> AsyncIterator[Api]:
    configured = settings.model_copy(
        update={"partner_secrets": live.secrets(), "allow_private_partners": True}
    )
    async with running_app(configured) as api:
        await register(api, "haowu", "HUB", category="PLATFORM")
        await register_connected(api, live, "skyair", "SKYMILES", "AIRLINE", pointValue="0.08")
        await live.member("skyair", "SK-1", 7000, name="WANG FANG")
        yield api


async def test_an_unknown_membership_number_is_not_found_naming_the_partner(
    hub: Api, live: Partners
) -> None:
    member = await enroll(hub, "HUB", "H-1", "王芳 Wang Fang")
    skyair = await create_key(hub, "MERCHANT", "skyair")
    token = await member_session(hub, member)
    for variables in (
        _link("SKYMILES", "SK-404", member),  # a link
        {"input": {"program": "SKYMILES", "externalRef": "SK-404", "displayName": "Li Wei"}},
    ):
        data = await hub.gql(ENROLL, variables, key=skyair, member_token=token)
        payload = data["enrollMember"]
        assert payload["member"] is None
        [error] = payload["userErrors"]
        assert (error["code"], error["field"]) == ("NOT_FOUND", ["input", "externalRef"])
        assert "skyair" in error["message"] and "SK-404" in error["message"]
        assert "not an outage" in error["message"]
    # Another name on a known number is refused the same way.
    data = await hub.gql(
        ENROLL, _link("SKYMILES", "SK-1", member, "Li Wei"), key=skyair, member_token=token
    )
    [error] = data["enrollMember"]["userErrors"]
    assert (error["code"], error["field"]) == ("NOT_FOUND", ["input", "displayName"])
    assert "skyair" in error["message"]
    assert await _accounts(hub, member) == {"HUB": "H-1"}
    # The number and name the partner knows: linked, and its balance is the partner's.
    data = await hub.gql(ENROLL, _link("SKYMILES", "SK-1", member), key=skyair, member_token=token)
    assert data["enrollMember"]["userErrors"] == []
    assert await balances(hub, member) == {"HUB": 0, "SKYMILES": 7000}


async def test_a_partner_that_does_not_answer_links_nothing(hub: Api, live: Partners) -> None:
    member = await enroll(hub, "HUB", "H-1", "Wang Fang")
    await live.stop("skyair")
    data = await hub.gql(ENROLL, _link("SKYMILES", "SK-1", member))
    [error] = data["enrollMember"]["userErrors"]
    assert error["code"] == "PARTNER_UNAVAILABLE"
    assert await _accounts(hub, member) == {"HUB": "H-1"}


async def test_a_partner_404_on_a_linked_account_is_a_refusal_not_an_outage(
    hub: Api, live: Partners
) -> None:
    member = await enroll(hub, "HUB", "H-1", "Wang Fang")
    await enroll(hub, "SKYMILES", "SK-1", "Wang Fang", member_id=member)
    assert await balances(hub, member) == {"HUB": 0, "SKYMILES": 7000}
    del live.sandbox("skyair").ledger.members["SK-1"]  # the airline closed the account
    response = await hub.post(
        'query($m: ID!) { member(id: $m) { account(program: "SKYMILES") { balance } } }',
        {"m": member},
    )
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert "skyair" in error["message"] and "not an outage" in error["message"]
    assert "not answering" not in error["message"]
