"""Credit-linked benefits through GraphQL over HTTP: setMemberCredit (ADMIN only), who sees
a member's credit level, promotions for a tier, a credit level, an age or the birthday
month stacking within the cap, and rewards that open early to some members."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hub.promotions import MAX_ACCRUAL_MULTIPLIER
from tests.helpers import (
    Api,
    balances,
    create_key,
    enroll,
    member_session,
    redeem,
    register,
    upsert_reward,
    verify_ledger,
)
from tests.loyalty.ladders import (
    GOLD,
    SET_CREDIT,
    SILVER,
    TODAY,
    accrue_at,
    born,
    person,
    promote,
    set_credit,
    set_tiers,
)

CREDIT = "query M($id: ID!) { member(id: $id) { id creditLevel } }"
NOW = dt.datetime.now(dt.UTC)


async def test_only_admin_sets_a_members_credit_level(api: Api) -> None:
    await register(api, "jade", "JADE")
    member = await enroll(api, "JADE", "J-1")
    for role, merchant in (("MERCHANT", "jade"), ("FINANCE", None), ("STOREFRONT", None)):
        errors = await api.errors(
            SET_CREDIT,
            {"id": member, "level": "EXCELLENT"},
            key=await create_key(api, role, merchant),
        )
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert (await api.gql(CREDIT, {"id": member}))["member"]["creditLevel"] is None
    done = await set_credit(api, member, "EXCELLENT")
    assert done == {"member": {"id": member, "creditLevel": "EXCELLENT"}, "userErrors": []}
    assert (await set_credit(api, member, "FAIR"))["member"]["creditLevel"] == "FAIR"
    unknown = await set_credit(api, "mbr_nobody", "GOOD")
    assert unknown["member"] is None
    assert unknown["userErrors"][0]["code"] == "NOT_FOUND"
    assert unknown["userErrors"][0]["field"] == ["memberId"]


async def test_a_credit_level_is_seen_by_the_member_and_admin_only(api: Api) -> None:
    await register(api, "jade", "JADE")
    member = await enroll(api, "JADE", "J-1")
    await set_credit(api, member, "GOOD")
    assert (await api.gql(CREDIT, {"id": member}))["member"]["creditLevel"] == "GOOD"
    storefront = await create_key(api, "STOREFRONT")
    own = await api.gql(
        "{ viewer { member { id creditLevel } } }",
        key=storefront,
        member_token=await member_session(api, member),
    )
    assert own["viewer"]["member"]["creditLevel"] == "GOOD"
    # The merchant sees its member, but not the member's credit.
    jade = await create_key(api, "MERCHANT", "jade")
    seen = await api.gql(CREDIT, {"id": member}, key=jade)
    assert seen["member"] == {"id": member, "creditLevel": None}
    # Another member's session sees nothing of them.
    other = await enroll(api, "JADE", "J-2")
    foreign = await api.gql(
        CREDIT, {"id": member}, key=storefront, member_token=await member_session(api, other)
    )
    assert foreign["member"] is None


async def test_a_merchant_holding_a_members_own_session_reads_as_the_merchant(
    api: Api,
) -> None:
    """Outside attack helper-78 (low): a MERCHANT key sent with a session the platform
    minted (the member's own, in the universal mall: leaked, or handed over) read what only
    the member sees, its credit level among it. A merchant's key reads as the merchant,
    whatever session comes with it."""
    await register(api, "jade", "JADE")
    member = await enroll(api, "JADE", "J-1")
    await set_credit(api, member, "GOOD")
    storefront = await create_key(api, "STOREFRONT")
    own = await member_session(api, member)  # minted by ADMIN, as the platform's login does
    jade = await create_key(api, "MERCHANT", "jade")
    seen = await api.gql(CREDIT, {"id": member}, key=jade, member_token=own)
    assert seen["member"] == {"id": member, "creditLevel": None}
    mine = await api.gql(CREDIT, {"id": member}, key=storefront, member_token=own)
    assert mine["member"] == {"id": member, "creditLevel": "GOOD"}


async def test_excellent_credit_earns_more_and_pays_fewer_points(api: Api, db_url: str) -> None:
    await register(api, "jade", "JADE", accrualRate="1")
    excellent = await enroll(api, "JADE", "J-1")
    good = await enroll(api, "JADE", "J-2")
    await set_credit(api, excellent, "EXCELLENT")
    await set_credit(api, good, "GOOD")
    offer = await promote(
        api,
        "JADE",
        "Excellent credit: 1.5x points, 10% fewer points",
        accrualMultiplier="1.5",
        redemptionDiscountPercent="10",
        creditLevels=["EXCELLENT"],
    )
    assert offer == {"ok": True, "userErrors": []}
    assert (await accrue_at(api, excellent, "JADE", "1000"))["points"] == 1500
    # A promotion that only discounts earns nothing more: the memo does not claim it did.
    discount = await promote(
        api,
        "JADE",
        "Excellent credit: 5% off",
        redemptionDiscountPercent="5",
        creditLevels=["EXCELLENT"],
    )
    assert discount["ok"], discount
    earned = await accrue_at(api, excellent, "JADE", "10")
    assert earned["entry"]["memo"] == (
        "purchase of 10 (Excellent credit: 1.5x points, 10% fewer points)"
    )
    assert (await accrue_at(api, good, "JADE", "1000"))["points"] == 1000
    await upsert_reward(
        api, ref="DUCK", kind="MEAL", title="Roast duck", price=1000, merchantId="jade"
    )
    query = '{ reward(id: "jade:DUCK") { price listPrice priceIn(program: "JADE") } }'
    storefront = await create_key(api, "STOREFRONT")
    token = await member_session(api, excellent)
    assert (await api.gql(query, key=storefront, member_token=token))["reward"] == {
        "price": 900,
        "listPrice": 1000,
        "priceIn": 900,
    }
    good_token = await member_session(api, good)
    assert (await api.gql(query, key=storefront, member_token=good_token))["reward"]["price"] == (
        1000
    )
    # A merchant browsing without a member sees the price for everyone.
    assert (await api.gql(query))["reward"]["price"] == 1000
    paid = await redeem(api, excellent, "jade:DUCK", "JADE", key=storefront, member_token=token)
    assert paid["userErrors"] == [] and paid["redemption"]["points"] == 900
    assert (await redeem(api, good, "jade:DUCK", "JADE"))["redemption"]["points"] == 1000
    assert await balances(api, excellent) == {"JADE": 615}
    assert await verify_ledger(db_url) == []


async def test_seniors_earn_15x_and_the_birthday_month_doubles_within_the_cap(api: Api) -> None:
    await register(api, "rail", "RAIL", accrualRate="1")
    this_month = TODAY.month
    senior = await person(api, "RAIL", "R-1", born(70))
    young = await person(api, "RAIL", "R-2", born(30))
    birthday = await person(api, "RAIL", "R-3", born(30, this_month))
    senior_birthday = await person(api, "RAIL", "R-4", born(65, this_month))
    unknown_age = await person(api, "RAIL", "R-5")
    under_sixty = await person(api, "RAIL", "R-6", born(59))
    seniors = await promote(api, "RAIL", "Seniors travel on 15x", accrualMultiplier="15", minAge=60)
    # A targeted promotion stacks with others at accrual, where the cap holds.
    birthdays = await promote(
        api, "RAIL", "Birthday month: double points", accrualMultiplier="2", birthdayMonth=True
    )
    assert seniors["ok"] and birthdays["ok"], (seniors, birthdays)
    accrued = {
        name: await accrue_at(api, member, "RAIL", "10")
        for name, member in (
            ("senior", senior),
            ("young", young),
            ("birthday", birthday),
            ("senior birthday", senior_birthday),
            ("unknown age", unknown_age),
            ("under 60", under_sixty),
        )
    }
    earned = {name: payload["points"] for name, payload in accrued.items()}
    assert MAX_ACCRUAL_MULTIPLIER == 20
    # The memo names what counted and says when the cap held the product back.
    assert accrued["senior birthday"]["entry"]["memo"] == (
        "purchase of 10 (Seniors travel on 15x, Birthday month: double points; held to x20)"
    )
    assert accrued["senior"]["entry"]["memo"] == "purchase of 10 (Seniors travel on 15x)"
    assert accrued["young"]["entry"]["memo"] == "purchase of 10"
    assert earned == {
        "senior": 150,
        "young": 10,
        "birthday": 20,
        "senior birthday": 200,  # x30, held to x20
        "unknown age": 10,
        "under 60": 10,
    }


async def test_a_promotion_for_a_tier_stacks_on_the_tiers_own_multiplier(api: Api) -> None:
    await register(api, "haowu", "HUB", category="PLATFORM", accrualRate="1")
    await set_tiers(api, "HUB", [SILVER, GOLD])
    silver = await enroll(api, "HUB", "H-1")
    gold = await enroll(api, "HUB", "H-2")
    for amount in ("600", "600"):
        await accrue_at(api, silver, "HUB", amount)
    for amount in ("3000", "1000", "1000"):
        await accrue_at(api, gold, "HUB", amount)
    offer = await promote(api, "HUB", "Gold week: triple", accrualMultiplier="3", tiers=["GOLD"])
    assert offer["ok"], offer
    assert (await accrue_at(api, silver, "HUB", "100"))["points"] == 100
    assert (await accrue_at(api, gold, "HUB", "100"))["points"] == 600  # Gold x2, then x3


async def test_bad_eligibility_is_refused_with_nothing_stored(api: Api) -> None:
    await register(api, "haowu", "HUB", category="PLATFORM", accrualRate="1")
    await set_tiers(api, "HUB", [SILVER])
    member = await enroll(api, "HUB", "H-1")
    for extra, field in (
        ({"tiers": ["PLATINUM"]}, ["input", "tiers"]),
        ({"minAge": 0}, ["input", "minAge"]),
        ({"minAge": 500}, ["input", "minAge"]),
    ):
        refused = await promote(api, "HUB", "bad", accrualMultiplier="2", **extra)
        assert refused["ok"] is False
        assert refused["userErrors"][0]["code"] == "INVALID_INPUT"
        assert refused["userErrors"][0]["field"] == field
    assert (await accrue_at(api, member, "HUB", "100"))["points"] == 100
    # A multiplier for some members above the cap on its own is refused as before.
    over = await promote(api, "HUB", "too much", accrualMultiplier="25", minAge=60)
    assert over["userErrors"][0]["field"] == ["input", "accrualMultiplier"]


PRIORITY = """query R($id: ID!) { reward(id: $id) { id priorityUntil opensAt stock } }"""


async def test_a_reward_opens_early_to_priority_tiers_and_credit_levels(
    api: Api, db_url: str
) -> None:
    await register(api, "haowu", "HUB", category="PLATFORM", accrualRate="1")
    await set_tiers(api, "HUB", [SILVER, GOLD])
    gold = await enroll(api, "HUB", "H-1")
    excellent = await enroll(api, "HUB", "H-2")
    silver = await enroll(api, "HUB", "H-3")
    for amount in ("3000", "1000", "1000"):
        await accrue_at(api, gold, "HUB", amount)
    for amount in ("2000", "1000"):
        await accrue_at(api, silver, "HUB", amount)
        await accrue_at(api, excellent, "HUB", amount)
    await set_credit(api, excellent, "EXCELLENT")
    await set_credit(api, silver, "GOOD")
    opens = (NOW + dt.timedelta(days=2)).replace(microsecond=0)
    await upsert_reward(
        api,
        ref="MOONCAKE",
        kind="GOODS",
        title="Mooncake gift box",
        price=500,
        stock=5,
        merchantId="haowu",
        priorityUntil=opens.isoformat(),
        priorityTiers=["GOLD"],
        priorityCreditLevels=["EXCELLENT"],
    )
    storefront = await create_key(api, "STOREFRONT")
    tokens = {m: await member_session(api, m) for m in (gold, excellent, silver)}
    reward_id = "haowu:MOONCAKE"
    until = opens.isoformat().replace("+00:00", "Z")

    async def seen_by(member: str) -> dict[str, Any]:
        data = await api.gql(
            PRIORITY, {"id": reward_id}, key=storefront, member_token=tokens[member]
        )
        return dict(data["reward"])

    assert (await seen_by(silver))["opensAt"] in (until, opens.isoformat())
    assert (await seen_by(silver))["priorityUntil"] == (await seen_by(gold))["priorityUntil"]
    assert (await seen_by(gold))["opensAt"] is None
    assert (await seen_by(excellent))["opensAt"] is None
    before = await balances(api, silver)
    refused = await redeem(
        api, silver, reward_id, "HUB", key=storefront, member_token=tokens[silver]
    )
    assert refused["redemption"] is None
    error = refused["userErrors"][0]
    assert error["code"] == "NOT_ELIGIBLE" and error["field"] == ["input", "rewardId"]
    local = opens.astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert f"opens for you at {local.isoformat(timespec='minutes')}" in error["message"]
    assert "GOLD" in error["message"] and "EXCELLENT" in error["message"]
    assert await balances(api, silver) == before
    for member in (gold, excellent):
        done = await redeem(
            api, member, reward_id, "HUB", key=storefront, member_token=tokens[member]
        )
        assert done["userErrors"] == [] and done["redemption"]["status"] == "CONFIRMED"
    # ADMIN acting for the member is held to the member's eligibility too.
    assert (await redeem(api, silver, reward_id, "HUB"))["userErrors"][0]["code"] == (
        "NOT_ELIGIBLE"
    )
    assert (await api.gql(PRIORITY, {"id": reward_id}))["reward"]["stock"] == 3
    # Once the time has come, everyone may.
    await upsert_reward(
        api,
        ref="MOONCAKE",
        kind="GOODS",
        title="Mooncake gift box",
        price=500,
        stock=3,
        merchantId="haowu",
        priorityUntil=(NOW - dt.timedelta(minutes=1)).isoformat(),
        priorityTiers=["GOLD"],
    )
    assert (await seen_by(silver))["opensAt"] is None
    late = await redeem(api, silver, reward_id, "HUB", key=storefront, member_token=tokens[silver])
    assert late["userErrors"] == []
    assert await verify_ledger(db_url) == []


async def test_priority_needs_a_time_and_the_programs_own_tiers(api: Api) -> None:
    await register(api, "haowu", "HUB", category="PLATFORM")
    await set_tiers(api, "HUB", [SILVER])
    for extra, field in (
        ({"priorityTiers": ["SILVER"]}, ["input", "priorityUntil"]),
        (
            {"priorityUntil": NOW.isoformat(), "priorityTiers": ["GOLD"]},
            ["input", "priorityTiers"],
        ),
    ):
        data = await api.gql(
            "mutation U($input: RewardInput!) { upsertReward(input: $input) "
            "{ reward { id } userErrors { field code } } }",
            {
                "input": {
                    "ref": "BOX",
                    "kind": "GOODS",
                    "title": "Box",
                    "price": 10,
                    "merchantId": "haowu",
                    **extra,
                }
            },
        )
        assert data["upsertReward"] == {
            "reward": None,
            "userErrors": [{"field": field, "code": "INVALID_INPUT"}],
        }
    assert (await api.gql('{ reward(id: "haowu:BOX") { id } }'))["reward"] is None
