"""A merchant bills only what it is owed: settlement prices are money (non-negative, at
most 2 decimals), a merchant's own is capped at price x its point value, only an ADMIN
contracts above it, a partner's offered price is checked the same way, and only ADMIN,
FINANCE and the reward's own merchant read it."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import update

from hub.config import Settings
from hub.db import Database, utcnow
from hub.models import Reward
from tests.helpers import (
    UPSERT,
    Api,
    accrue,
    balances,
    enroll,
    live_app,
    member_session,
    obligations,
    redeem,
    register,
    set_rate,
    upsert_reward,
)
from tests.partners import Partners, partners, register_connected
from tests.world import World

PAYMENTS = """
mutation Run($d: Date!) {
  runSettlement(businessDate: $d) {
    batch { grossAmount payments { from { id } to { id } amount } }
    userErrors { code }
  }
}"""


def _today() -> str:
    return utcnow().astimezone(dt.timezone(dt.timedelta(hours=8))).date().isoformat()


@pytest.fixture
async def world(world: World) -> dict[str, Any]:
    """The issue's demo: 1 JADE costs 2 HUB; JADE and HUB points are worth 0.10 each."""
    await world.programs("HUB", "JADE", "LOTUS", pointValue="0.10", LOTUS={"pointValue": "0.05"})
    await world.rates(("HUB", "JADE", "0.5"))
    return {
        "member": await world.member("Liu Yang", {"HUB": "H-1"}, points={"HUB": "1000"}),
        "jade": await world.key("MERCHANT", "jade"),
        "lotus": await world.key("MERCHANT", "lotus"),
        "finance": await world.key("FINANCE"),
        "storefront": await world.key("STOREFRONT"),
    }


def _voucher(**extra: Any) -> dict[str, Any]:
    # GOODS, not VOUCHER: a voucher's code is one per redemption, and these redeem 20 at once.
    return {"ref": "VOUCHER", "kind": "GOODS", "title": "1-point voucher", "price": 1, **extra}


async def _upsert(api: Api, key: str, data: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = (await api.gql(UPSERT, {"input": data}, key=key))["upsertReward"]
    return payload


async def _settle(api: Api) -> dict[str, Any]:
    data = await api.gql(PAYMENTS, {"d": _today()})
    assert data["runSettlement"]["userErrors"] == []
    batch: dict[str, Any] = data["runSettlement"]["batch"]
    return batch


def _payments(batch: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(p["from"]["id"], p["to"]["id"], p["amount"]) for p in batch["payments"]}


async def test_a_merchant_cannot_bill_a_hundred_million_for_a_one_point_voucher(
    api: Api, world: dict[str, Any], db_url: str
) -> None:
    refused = await _upsert(api, world["jade"], _voucher(settlementPrice="100000000"))
    assert refused["reward"] is None
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [
        ("INVALID_INPUT", ["input", "settlementPrice"])
    ]
    assert "0.10" in refused["userErrors"][0]["message"]  # names the cap: 1 x 0.10
    assert (await api.gql('{ reward(id: "jade:VOUCHER") { id } }'))["reward"] is None
    # At the cap is the merchant's right; the voucher then costs what its points are worth.
    at_cap = await _upsert(api, world["jade"], _voucher(settlementPrice="0.10"))
    assert at_cap["userErrors"] == [] and at_cap["reward"]["settlementPrice"] == "0.10"
    paid = await redeem(api, world["member"], "jade:VOUCHER", "HUB", quantity=20)
    assert paid["userErrors"] == [], paid
    assert paid["redemption"]["points"] == 40
    assert paid["redemption"]["settlementPrice"] == "2.00"
    batch = await _settle(api)
    assert _payments(batch) == {("haowu", "jade", "2.00")}
    assert batch["grossAmount"] == "2.00"


async def test_a_price_stored_above_the_cap_before_the_fix_still_bills_only_the_cap(
    api: Api, world: dict[str, Any], db_url: str
) -> None:
    await upsert_reward(api, world["jade"], **_voucher())
    db = Database(db_url)
    try:
        async with db.write() as session:
            await session.execute(
                update(Reward)
                .where(Reward.id == "jade:VOUCHER")
                .values(settlement_price=Decimal("100000000"))
            )
    finally:
        await db.dispose()
    paid = await redeem(api, world["member"], "jade:VOUCHER", "HUB", quantity=20)
    assert paid["redemption"]["settlementPrice"] == "2.00"
    assert [o["amount"] for o in await obligations(db_url)] == [Decimal("2.00")]
    assert _payments(await _settle(api)) == {("haowu", "jade", "2.00")}


async def test_settlement_prices_are_money_and_zero_is_kept(
    api: Api, world: dict[str, Any], db_url: str
) -> None:
    for key in (world["jade"], "test-admin-secret"):
        for bad in ("10.005", "-250", "NaN", "Infinity"):
            data = _voucher(settlementPrice=bad, merchantId="jade")
            if key != "test-admin-secret":
                data.pop("merchantId")
            refused = await _upsert(api, key, data)
            assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [
                ("INVALID_INPUT", ["input", "settlementPrice"])
            ], (key, bad)
    assert (await api.gql('{ reward(id: "jade:VOUCHER") { id } }'))["reward"] is None
    free = await _upsert(
        api, world["jade"], {**_voucher(settlementPrice="0.00"), "price": 500, "ref": "FREE"}
    )
    assert free["userErrors"] == [] and free["reward"]["settlementPrice"] == "0.00"
    paid = await redeem(api, world["member"], "jade:FREE", "HUB")
    assert paid["userErrors"] == [] and paid["redemption"]["settlementPrice"] == "0.00"
    assert [o["amount"] for o in await obligations(db_url)] in ([], [Decimal("0.00")])
    # Without a settlementPrice the default is price x pointValue (500 x 0.10).
    default = await _upsert(api, world["jade"], {**_voucher(), "price": 500, "ref": "FREE"})
    assert default["reward"]["settlementPrice"] == "50.00"


async def test_only_an_admin_contracts_a_price_above_the_cap(
    api: Api, world: dict[str, Any], db_url: str
) -> None:
    contracted = await _upsert(
        api, "test-admin-secret", _voucher(settlementPrice="5.00", merchantId="jade")
    )
    assert contracted["userErrors"] == [] and contracted["reward"]["settlementPrice"] == "5.00"
    # The merchant edits its reward: the contract stays, and is not the merchant's to change.
    edited = await upsert_reward(api, world["jade"], **_voucher(title="Voucher (new)"))
    assert edited["settlementPrice"] == "5.00"
    for price in ("0.05", "6.00"):
        refused = await _upsert(api, world["jade"], _voucher(settlementPrice=price))
        assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [
            ("FORBIDDEN", ["input", "settlementPrice"])
        ]
    paid = await redeem(api, world["member"], "jade:VOUCHER", "HUB", quantity=2)
    assert paid["redemption"]["settlementPrice"] == "10.00"
    assert [o["amount"] for o in await obligations(db_url)] == [Decimal("10.00")]
    # Without a price from the ADMIN, the contract ends and the cap applies again.
    ended = await _upsert(api, "test-admin-secret", _voucher(merchantId="jade"))
    assert ended["reward"]["settlementPrice"] == "0.10"


async def test_settlement_price_is_shown_to_admin_finance_and_its_own_merchant_only(
    api: Api, world: dict[str, Any]
) -> None:
    await upsert_reward(api, world["jade"], **_voucher(price=300, settlementPrice="25.00"))
    token = await member_session(api, world["member"])
    query = (
        'query($reps: [_Any!]!) { reward(id: "jade:VOUCHER") { settlementPrice } '
        "rewards { edges { node { id settlementPrice } } } "
        "_entities(representations: $reps) { ... on Reward { settlementPrice } } }"
    )
    reps = {"reps": [{"__typename": "Reward", "id": "jade:VOUCHER"}]}
    seen = {}
    for name, key, member_token in [
        ("admin", "test-admin-secret", None),
        ("finance", world["finance"], None),
        ("jade", world["jade"], None),
        ("lotus", world["lotus"], None),
        ("storefront", world["storefront"], None),
        ("shopper", world["storefront"], token),
    ]:
        response = await api.post(query, reps, key=key, member_token=member_token)
        body = response.json()
        if body.get("errors"):
            # The contract keeps the field non-null: hidden is a FORBIDDEN error on it,
            # and the money never appears in the answer.
            assert "25.00" not in response.text, (name, body)
            assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}, body
            assert all(e["path"][-1] == "settlementPrice" for e in body["errors"])
            seen[name] = None
            continue
        data = body["data"]
        listed = [e["node"]["settlementPrice"] for e in data["rewards"]["edges"]]
        values = {
            data["reward"]["settlementPrice"],
            *listed,
            data["_entities"][0]["settlementPrice"],
        }
        assert len(values) == 1, (name, data)
        seen[name] = values.pop()
    assert seen == {
        "admin": "25.00",
        "finance": "25.00",
        "jade": "25.00",
        "lotus": None,
        "storefront": None,
        "shopper": None,
    }
    # Without the field, every caller reads the catalog as before.
    plain = await api.gql('{ reward(id: "jade:VOUCHER") { id price } }', key=world["lotus"])
    assert plain["reward"]["id"] == "jade:VOUCHER"


# ---------------------------------------------------------------- partners' offered prices

OFFERS: list[dict[str, Any]] = [
    {
        "ref": "GOOD",
        "kind": "SERVICE",
        "title": "Car wash",
        "price": 300,
        "settlementPrice": "25.00",
    },
    {
        "ref": "FREE",
        "kind": "SERVICE",
        "title": "Air check",
        "price": 300,
        "settlementPrice": "0.00",
    },
    {"ref": "PLAIN", "kind": "SERVICE", "title": "Vacuum", "price": 300},
    {"ref": "NEG", "kind": "SERVICE", "title": "Wax", "price": 300, "settlementPrice": "-250"},
    {
        "ref": "FRAC",
        "kind": "SERVICE",
        "title": "Polish",
        "price": 300,
        "settlementPrice": "10.005",
    },
    {
        "ref": "HIGH",
        "kind": "SERVICE",
        "title": "Tyres",
        "price": 1,
        "settlementPrice": "100000000",
    },
    {"ref": "JUNK", "kind": "SERVICE", "title": "Rims", "price": 300, "settlementPrice": "abc"},
]


@pytest.fixture
async def carwash(settings: Settings) -> AsyncIterator[tuple[Api, Partners, str]]:
    async with partners() as live:
        await live.start("carwash", "HTTP", rewards=OFFERS)
        configured = settings.model_copy(
            update={"partner_secrets": live.secrets(), "allow_private_partners": True}
        )
        async with live_app(configured) as (_, api):
            await register(api, "haowu", "HUB", category="PLATFORM", pointValue="0.10")
            await register_connected(api, live, "carwash", "WASH", "HTTP", pointValue="0.10")
            await set_rate(api, "HUB", "WASH", "1")
            member = await enroll(api, "HUB", "H-1", "Zhao Lei")
            await accrue(api, member, "HUB", "10000")
            await live.member("carwash", "W-1", 0)
            await enroll(api, "WASH", "W-1", member_id=member)
            yield api, live, member


async def test_a_partners_offered_price_is_checked_like_a_merchants(
    carwash: tuple[Api, Partners, str], db_url: str
) -> None:
    api, _, member = carwash
    listed = await api.gql(
        '{ rewards(filter: {merchant: "carwash"}) { edges { node { id settlementPrice } } '
        "unavailableMerchants { id } } }"
    )
    assert listed["rewards"]["unavailableMerchants"] == []
    prices = {e["node"]["id"]: e["node"]["settlementPrice"] for e in listed["rewards"]["edges"]}
    assert prices == {"carwash:GOOD": "25.00", "carwash:FREE": "0.00", "carwash:PLAIN": "30.00"}
    for ref in ("NEG", "FRAC", "HIGH", "JUNK"):
        refused = await redeem(api, member, f"carwash:{ref}", "HUB")
        assert refused["redemption"] is None, ref
        error = refused["userErrors"][0]
        assert error["code"] == "INVALID_STATE" and error["field"] == ["input", "rewardId"], ref
        assert "carwash" in error["message"] and "settlement price" in error["message"], error
    assert (await balances(api, member))["HUB"] == 10000
    assert await obligations(db_url) == []
    good = await redeem(api, member, "carwash:GOOD", "HUB")
    assert good["userErrors"] == [] and good["redemption"]["settlementPrice"] == "25.00"
    assert [o["amount"] for o in await obligations(db_url)] == [Decimal("25.00")]


# ------------------------------------------------- a FORBIDDEN answer means nothing moved

REDEEM_SEEING_PRICES = """
mutation R($input: RedeemRewardInput!) {
  redeemReward(input: $input) {
    redemption { id points settlementPrice reward { id settlementPrice } }
    userErrors { field code message }
  }
}"""

CANCEL_SEEING_PRICES = """
mutation C($input: CancelRedemptionInput!) {
  cancelRedemption(input: $input) {
    redemption { id status settlementPrice }
    userErrors { field code message }
  }
}"""


async def test_a_redemption_asking_for_prices_its_caller_may_not_see_moves_nothing(
    api: Api, world: dict[str, Any], db_url: str
) -> None:
    """An outside tester's find: a member's session asking redeemReward for the settlement
    price got FORBIDDEN on that field while the redemption went through (the points taken,
    no redemption id in the answer): a storefront that believes the call failed and
    retries under a new key redeems twice. The payload's prices are checked before
    anything moves: FORBIDDEN means nothing was redeemed, or cancelled."""
    await upsert_reward(
        api, world["jade"], ref="MUG", kind="GOODS", title="Mug", price=300, settlementPrice="25.00"
    )
    token = await member_session(api, world["member"])
    shopper = {"key": world["storefront"], "member_token": token}
    before = await balances(api, world["member"])
    ask = {
        "memberId": world["member"],
        "rewardId": "jade:MUG",
        "payWith": "HUB",
        "idempotencyKey": "seeing-1",
    }
    body = (await api.post(REDEEM_SEEING_PRICES, {"input": ask}, **shopper)).json()
    assert "errors" not in body, body
    payload = body["data"]["redeemReward"]
    assert payload["redemption"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("FORBIDDEN", None)]
    assert "settlementPrice" in payload["userErrors"][0]["message"]
    assert await balances(api, world["member"]) == before
    # The same field twice under one response key: the second asks the price.
    merged = REDEEM_SEEING_PRICES.replace(
        "redeemReward(input: $input) {",
        "redeemReward(input: $input) { redemption { id } }\n  redeemReward(input: $input) {",
    )
    body = (await api.post(merged, {"input": ask}, **shopper)).json()
    assert "errors" not in body, body
    assert [e["code"] for e in body["data"]["redeemReward"]["userErrors"]] == ["FORBIDDEN"]
    assert await balances(api, world["member"]) == before
    assert await obligations(db_url) == []
    # Without the prices, the same session redeems; asking to cancel with them moves nothing.
    done = await redeem(api, world["member"], "jade:MUG", "HUB", **shopper)
    assert done["userErrors"] == [], done
    after = await balances(api, world["member"])
    assert after["HUB"] == before["HUB"] - 600
    cancel = {
        "redemptionId": done["redemption"]["id"],
        "reason": "MEMBER_REQUEST",
        "idempotencyKey": "cancel-1",
    }
    body = (await api.post(CANCEL_SEEING_PRICES, {"input": cancel}, **shopper)).json()
    assert "errors" not in body, body
    payload = body["data"]["cancelRedemption"]
    assert payload["redemption"] is None
    assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"]
    assert await balances(api, world["member"]) == after
    # Those who may see the prices are answered with them.
    await accrue(api, world["member"], "HUB", "1000")
    admin = await api.gql(REDEEM_SEEING_PRICES, {"input": {**ask, "idempotencyKey": "seeing-2"}})
    assert admin["redeemReward"]["redemption"]["settlementPrice"] == "25.00"
    assert admin["redeemReward"]["redemption"]["reward"]["settlementPrice"] == "25.00"


async def test_a_settlement_price_a_directive_leaves_out_is_not_asked(
    api: Api, world: dict[str, Any]
) -> None:
    """A price left out by @skip(if: true) or @include(if: false) is not in the answer, so
    it does not stop the redemption (outside attack helper-72, LOW); included, it does."""
    await upsert_reward(
        api, world["jade"], ref="CUP", kind="GOODS", title="Cup", price=300, settlementPrice="25.00"
    )
    token = await member_session(api, world["member"])
    shopper = {"key": world["storefront"], "member_token": token}
    query = """
    mutation R($input: RedeemRewardInput!, $show: Boolean!) {
      redeemReward(input: $input) {
        redemption { id settlementPrice @skip(if: true)
                     reward { id ... on Reward { settlementPrice @include(if: $show) } } }
        userErrors { field code message }
      }
    }"""
    ask = {"memberId": world["member"], "rewardId": "jade:CUP", "payWith": "HUB"}
    shown = {"input": {**ask, "idempotencyKey": "directive-1"}, "show": True}
    body = (await api.post(query, shown, **shopper)).json()
    assert [e["code"] for e in body["data"]["redeemReward"]["userErrors"]] == ["FORBIDDEN"]
    left_out = {"input": {**ask, "idempotencyKey": "directive-2"}, "show": False}
    body = (await api.post(query, left_out, **shopper)).json()
    assert "errors" not in body, body
    payload = body["data"]["redeemReward"]
    assert payload["userErrors"] == [], payload
    assert payload["redemption"]["reward"] == {"id": "jade:CUP"}


async def test_a_price_asked_further_down_a_redemptions_answer_is_refused_first(
    api: Api, world: dict[str, Any]
) -> None:
    """Prices of other redemptions asked below a redemption's answer (the member's
    redemptions) are refused FORBIDDEN before anything moves, for a redemption and for a
    cancellation (outside attack helper-84: the redemption ran, then its answer was a
    field error and the caller never saw its id)."""
    await upsert_reward(
        api, world["jade"], ref="MUG", kind="GOODS", title="Mug", price=300, settlementPrice="25.00"
    )
    token = await member_session(api, world["member"])
    shopper = {"key": world["storefront"], "member_token": token}
    deep = """
    mutation R($input: RedeemRewardInput!) {
      redeemReward(input: $input) {
        redemption { id member { redemptions(first: 5) {
          edges { node { id reward { ... on Reward { settlementPrice } } } } } } }
        userErrors { field code message }
      }
    }"""
    ask = {"memberId": world["member"], "rewardId": "jade:MUG", "payWith": "HUB"}
    before = await balances(api, world["member"])
    body = (await api.post(deep, {"input": {**ask, "idempotencyKey": "deep-1"}}, **shopper)).json()
    assert "errors" not in body, body
    payload = body["data"]["redeemReward"]
    assert payload["redemption"] is None
    assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"], payload
    assert await balances(api, world["member"]) == before
    # A redemption made without them, then its cancellation asking them: refused alike.
    made = await api.gql(
        "mutation R($input: RedeemRewardInput!) { redeemReward(input: $input) "
        "{ redemption { id } userErrors { code } } }",
        {"input": {**ask, "idempotencyKey": "deep-2"}},
    )
    redemption = made["redeemReward"]["redemption"]["id"]
    after = await balances(api, world["member"])
    cancel = """
    mutation C($input: CancelRedemptionInput!) {
      cancelRedemption(input: $input) {
        redemption { id status member { redemptions(first: 5) {
          edges { node { id settlementPrice } } } } }
        userErrors { field code message }
      }
    }"""
    asked = {"redemptionId": redemption, "reason": "MEMBER_REQUEST", "idempotencyKey": "deep-3"}
    body = (await api.post(cancel, {"input": asked}, **shopper)).json()
    assert [e["code"] for e in body["data"]["cancelRedemption"]["userErrors"]] == ["FORBIDDEN"]
    assert await balances(api, world["member"]) == after


async def test_a_defaulted_variable_given_null_where_a_value_is_needed_moves_nothing(
    api: Api, world: dict[str, Any]
) -> None:
    """`$b: Boolean = true` may stand where a Boolean! is needed (its default fills it);
    given null explicitly, it is refused INVALID_INPUT before anything runs (outside attack
    helper-84: the redemption ran, then its answer was INTERNAL)."""
    query = """
    mutation R($input: RedeemRewardInput!, $b: Boolean = true) {
      redeemReward(input: $input) {
        redemption { id status @include(if: $b) }
        userErrors { field code message }
      }
    }"""
    ask = {"memberId": world["member"], "rewardId": "jade:SET", "payWith": "HUB"}
    await upsert_reward(api, world["jade"], ref="SET", kind="GOODS", title="Set", price=100)
    before = await balances(api, world["member"])
    refused = {"input": {**ask, "idempotencyKey": "null-1"}, "b": None}
    response = await api.post(query, refused)
    body = response.json()
    assert body.get("data") is None, body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_INPUT"], body
    assert "$b" in body["errors"][0]["message"]
    assert await balances(api, world["member"]) == before
    # Left out, the default stands; given, it is used.
    for n, variables in enumerate(({}, {"b": False})):
        given = {"input": {**ask, "idempotencyKey": f"null-{n + 2}"}, **variables}
        body = (await api.post(query, given)).json()
        assert "errors" not in body, body
        assert body["data"]["redeemReward"]["userErrors"] == []
    # A query alike: refused up front, not an INTERNAL error of its field.
    body = (
        await api.post(
            "query Q($b: Boolean = true) { viewer { role @include(if: $b) } }", {"b": None}
        )
    ).json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_INPUT"], body
