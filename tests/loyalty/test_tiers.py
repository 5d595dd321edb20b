"""Tiers through GraphQL over HTTP: who sets them, what is refused, moving up at the
accrual that qualifies, down only at the nightly review (with TIER_CHANGED either way),
the tier's multiplier within the promotion cap, and its discount on prices paid in its
program."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from hub.config import Settings
from hub.db import Database
from hub.ledger.points import add_months
from hub.models import AccrualAmount
from hub.tiers.review import review_tiers
from tests.helpers import (
    Api,
    create_key,
    enroll,
    member_session,
    obligations,
    redeem,
    register,
    set_rate,
    upsert_reward,
    verify_ledger,
)
from tests.loyalty.ladders import (
    GOLD,
    SILVER,
    accrue_at,
    events,
    promote,
    set_tiers,
    standing,
)

NOW = dt.datetime.now(dt.UTC)


async def _shop(api: Api) -> str:
    """A supermarket-style program with Silver and Gold, and one member in it."""
    await register(api, "haowu", "HUB", category="PLATFORM", accrualRate="1")
    assert (await set_tiers(api, "HUB", [SILVER, GOLD]))["userErrors"] == []
    return await enroll(api, "HUB", "H-1")


async def test_a_merchant_sets_its_own_programs_tiers_and_no_other(api: Api) -> None:
    await register(api, "haowu", "HUB", category="PLATFORM")
    await register(api, "jade", "JADE")
    haowu = await create_key(api, "MERCHANT", "haowu")
    done = await set_tiers(api, "HUB", [SILVER, GOLD], key=haowu)
    assert done["userErrors"] == []
    assert done["program"]["tiers"] == [
        {
            "code": "SILVER",
            "name": "Silver",
            "minSpend": "1000.00",
            "minOrders": 2,
            "accrualMultiplier": "1",
            "redemptionDiscountPercent": "0",
            "benefits": ["Free parking"],
        },
        {
            "code": "GOLD",
            "name": "Gold",
            "minSpend": "5000.00",
            "minOrders": 3,
            "accrualMultiplier": "2",
            "redemptionDiscountPercent": "10",
            "benefits": ["Double points", "Personal shopper"],
        },
    ]
    # Another merchant's program: a userError, and its ladder stays empty.
    refused = await set_tiers(api, "JADE", [SILVER], key=haowu)
    assert refused["program"] is None
    assert refused["userErrors"][0]["code"] == "FORBIDDEN"
    jade = await api.gql('{ program(code: "JADE") { tiers { code } } }')
    assert jade["program"]["tiers"] == []
    # Roles that may not set tiers at all get a top-level FORBIDDEN.
    for role in ("FINANCE", "STOREFRONT"):
        errors = await api.errors(
            'mutation { setTiers(program: "HUB", tiers: []) { userErrors { code } } }',
            key=await create_key(api, role),
        )
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    # ADMIN sets any program's; an empty list removes the ladder.
    assert (await set_tiers(api, "JADE", [SILVER]))["userErrors"] == []
    assert (await set_tiers(api, "HUB", [], key=haowu))["program"]["tiers"] == []


BAD_LADDERS: dict[str, tuple[list[dict[str, Any]], list[str]]] = {
    "unordered spend": ([GOLD, SILVER], ["tiers", "1", "minSpend"]),
    "equal spend overlaps": (
        [SILVER, {**GOLD, "minSpend": "1000"}],
        ["tiers", "1", "minSpend"],
    ),
    "fewer orders above": ([SILVER, {**GOLD, "minOrders": 1}], ["tiers", "1", "minOrders"]),
    "multiplier above the cap": (
        [SILVER, {**GOLD, "accrualMultiplier": "21"}],
        ["tiers", "1", "accrualMultiplier"],
    ),
    "multiplier below one": (
        [{**SILVER, "accrualMultiplier": "0.5"}],
        ["tiers", "0", "accrualMultiplier"],
    ),
    "higher tier earns less": (
        [{**SILVER, "accrualMultiplier": "3"}, GOLD],
        ["tiers", "1", "accrualMultiplier"],
    ),
    "discount of 100%": (
        [SILVER, {**GOLD, "redemptionDiscountPercent": "100"}],
        ["tiers", "1", "redemptionDiscountPercent"],
    ),
    "same code twice": ([SILVER, {**GOLD, "code": "SILVER"}], ["tiers", "1", "code"]),
    "same code in other case": ([SILVER, {**GOLD, "code": "silver"}], ["tiers", "1", "code"]),
    "negative spend": ([{**SILVER, "minSpend": "-1"}], ["tiers", "0", "minSpend"]),
    "spend past the cent": ([{**SILVER, "minSpend": "10.001"}], ["tiers", "0", "minSpend"]),
    "invisible name": ([{**SILVER, "name": "\u200b "}], ["tiers", "0", "name"]),
    "code with a space": ([{**SILVER, "code": "SIL VER"}], ["tiers", "0", "code"]),
}


BAD_BENEFITS = {
    "an empty benefit": (
        ["Free parking", ""],
        "benefits[1] must have a visible character (it is empty or only spaces and invisible "
        "characters).",
    ),
    "a benefit too long": (["x" * 101], "benefits[0] is longer than 100 characters."),
}


@pytest.mark.parametrize("case", BAD_BENEFITS)
async def test_a_bad_benefit_is_named_by_its_place_in_the_list(api: Api, case: str) -> None:
    await register(api, "haowu", "HUB", category="PLATFORM")
    benefits, message = BAD_BENEFITS[case]
    refused = await set_tiers(api, "HUB", [{**SILVER, "benefits": benefits}])
    assert refused["userErrors"] == [
        {
            "field": ["tiers", "0", "benefits", str(len(benefits) - 1)],
            "message": message,
            "code": "INVALID_INPUT",
        }
    ]


@pytest.mark.parametrize("case", BAD_LADDERS)
async def test_a_bad_ladder_is_refused_whole_with_nothing_changed(api: Api, case: str) -> None:
    member = await _shop(api)
    await accrue_at(api, member, "HUB", "1200")
    await accrue_at(api, member, "HUB", "100")
    tiers, field = BAD_LADDERS[case]
    refused = await set_tiers(api, "HUB", tiers)
    assert refused["program"] is None
    assert refused["userErrors"][0]["code"] == "INVALID_INPUT", refused
    assert refused["userErrors"][0]["field"] == field
    program = await api.gql('{ program(code: "HUB") { tiers { code minSpend } } }')
    assert program["program"]["tiers"] == [
        {"code": "SILVER", "minSpend": "1000.00"},
        {"code": "GOLD", "minSpend": "5000.00"},
    ]
    assert (await standing(api, member, "HUB"))["tier"]["tier"]["code"] == "SILVER"


async def test_a_member_moves_up_as_soon_as_an_accrual_qualifies(api: Api, db_url: str) -> None:
    member = await _shop(api)
    first = await accrue_at(api, member, "HUB", "600")
    assert first["points"] == 600
    assert (await standing(api, member, "HUB"))["tier"] == {
        "tier": None,
        "qualifyingSpend": "600.00",
        "qualifyingOrders": 1,
        "next": {"code": "SILVER"},
        "spendToNext": "400.00",
        "ordersToNext": 1,
    }
    await accrue_at(api, member, "HUB", "500")
    now = (await standing(api, member, "HUB"))["tier"]
    assert now["tier"] == {"code": "SILVER", "name": "Silver", "benefits": ["Free parking"]}
    assert (now["next"], now["spendToNext"], now["ordersToNext"]) == (
        {"code": "GOLD"},
        "3900.00",
        1,
    )
    # The purchase that qualifies for Gold earns at Silver; the next one at Gold's x2.
    assert (await accrue_at(api, member, "HUB", "4000"))["points"] == 4000
    gold = await accrue_at(api, member, "HUB", "100")
    assert gold["points"] == 200
    assert "Gold x2" in gold["entry"]["memo"]
    top = (await standing(api, member, "HUB"))["tier"]
    assert top["tier"]["code"] == "GOLD"
    assert (top["next"], top["spendToNext"], top["ordersToNext"]) == (None, None, None)
    assert top["qualifyingSpend"] == "5200.00" and top["qualifyingOrders"] == 4
    changed = [e["data"] for e in await events(db_url, "TIER_CHANGED")]
    assert [(c["from"], c["to"], c["direction"]) for c in changed] == [
        (None, "SILVER", "UP"),
        ("SILVER", "GOLD", "UP"),
    ]
    assert changed[1] == {
        "memberId": member,
        "program": "HUB",
        "from": "SILVER",
        "to": "GOLD",
        "direction": "UP",
        "qualifyingSpend": "5100.00",
        "qualifyingOrders": 3,
    }
    assert await verify_ledger(db_url) == []


@pytest.mark.parametrize(("amount", "at_silver"), [(100, 1), (10, 10)])
async def test_purchases_sent_at_once_earn_as_the_same_purchases_one_by_one(
    api: Api, db_url: str, amount: int, at_silver: int
) -> None:
    """A member at Silver with 4,900 of Gold's 5,000 spend: twenty purchases sent all at
    once earn what they earn one after another. Those up to the one that reaches 5,000 earn
    at Silver's x1; each later one is made once the one before has raised the member, and
    earns at Gold's x2. (Outside attacks: helper-85, all twenty earned x1; helper-86, with
    purchases of 10, one to three more than ten earned x1: a purchase's time was taken
    before it waited for the one before, whose purchase then counted as later.)"""
    member = await _shop(api)
    await accrue_at(api, member, "HUB", "600")
    await accrue_at(api, member, "HUB", "4300")
    assert (await standing(api, member, "HUB"))["tier"]["tier"]["code"] == "SILVER"
    made = await asyncio.gather(*[accrue_at(api, member, "HUB", str(amount)) for _ in range(20)])
    earned = [amount] * at_silver + [2 * amount] * (20 - at_silver)
    assert sorted(p["points"] for p in made) == earned, made
    top = (await standing(api, member, "HUB"))["tier"]
    assert top["tier"]["code"] == "GOLD" and top["qualifyingOrders"] == 22
    assert (await standing(api, member, "HUB"))["balance"] == 600 + 4300 + sum(earned)
    assert await verify_ledger(db_url) == []


async def test_a_retried_accrual_counts_its_purchase_once(api: Api) -> None:
    member = await _shop(api)
    for _ in range(3):
        await accrue_at(api, member, "HUB", "1500", idempotency_key="till-1", order="T-1")
    tier = (await standing(api, member, "HUB"))["tier"]
    assert (tier["qualifyingSpend"], tier["qualifyingOrders"], tier["tier"]) == (
        "1500.00",
        1,
        None,
    )


async def test_purchases_older_than_twelve_months_do_not_qualify(api: Api) -> None:
    member = await _shop(api)
    await accrue_at(api, member, "HUB", "3000", add_months(NOW, -13))
    await accrue_at(api, member, "HUB", "300", add_months(NOW, -11))
    tier = (await standing(api, member, "HUB"))["tier"]
    assert (tier["qualifyingSpend"], tier["qualifyingOrders"], tier["tier"]) == (
        "300.00",
        1,
        None,
    )


async def _age(db_url: str, member: str, months: int) -> None:
    """Time passes: the member's purchases are `months` older."""
    db = Database(db_url)
    try:

        async def work(session: Any) -> None:
            rows = await session.scalars(
                select(AccrualAmount).where(AccrualAmount.member_id == member)
            )
            for row in rows:
                row.occurred_at = add_months(row.occurred_at, -months)

        await db.transaction(work)
    finally:
        await db.dispose()


async def test_a_member_moves_down_only_at_the_nightly_review(
    api: Api, settings: Settings, db_url: str
) -> None:
    member = await _shop(api)
    for amount in ("3000", "1500", "600"):
        await accrue_at(api, member, "HUB", amount, add_months(NOW, -10))
    await accrue_at(api, member, "HUB", "1200", add_months(NOW, -1))
    assert (await standing(api, member, "HUB"))["tier"]["tier"]["code"] == "GOLD"
    # Three months on, the first three purchases are past the trailing 12 months: the
    # member no longer qualifies for Gold, but keeps it until the nightly review.
    await _age(db_url, member, 3)
    held = (await standing(api, member, "HUB"))["tier"]
    assert held["tier"]["code"] == "GOLD"
    assert (held["qualifyingSpend"], held["qualifyingOrders"]) == ("1200.00", 1)
    # The review lowers them to what they qualify for (below Silver: one order only).
    db = Database(db_url)
    try:
        reviewed = await review_tiers(db, settings)
        assert (reviewed.programs, reviewed.members, reviewed.moved_down) == (1, 1, 1)
        # Once a business date: a second run (another replica, the next hour) does nothing.
        again = await review_tiers(db, settings)
        assert (again.programs, again.moved_down) == (0, 0)
    finally:
        await db.dispose()
    lowered = (await standing(api, member, "HUB"))["tier"]
    assert lowered["tier"] is None and lowered["next"] == {"code": "SILVER"}
    changed = [e["data"] for e in await events(db_url, "TIER_CHANGED")]
    assert (changed[-1]["from"], changed[-1]["to"], changed[-1]["direction"]) == (
        "GOLD",
        None,
        "DOWN",
    )
    # A purchase that qualifies again raises them at once.
    await accrue_at(api, member, "HUB", "100")
    assert (await standing(api, member, "HUB"))["tier"]["tier"]["code"] == "SILVER"


async def test_the_review_records_members_that_a_lower_threshold_lifts(
    api: Api, settings: Settings, db_url: str
) -> None:
    member = await _shop(api)
    for _ in range(3):
        await accrue_at(api, member, "HUB", "1000")
    assert (await standing(api, member, "HUB"))["tier"]["tier"]["code"] == "SILVER"
    assert (await set_tiers(api, "HUB", [SILVER, {**GOLD, "minSpend": "2500"}]))["userErrors"] == []
    # Shown at once (the member qualifies), recorded with an event at the review.
    assert (await standing(api, member, "HUB"))["tier"]["tier"]["code"] == "GOLD"
    db = Database(db_url)
    try:
        reviewed = await review_tiers(db, settings)
    finally:
        await db.dispose()
    assert (reviewed.moved_up, reviewed.moved_down) == (1, 0)
    last = (await events(db_url, "TIER_CHANGED"))[-1]["data"]
    assert (last["from"], last["to"], last["direction"]) == ("SILVER", "GOLD", "UP")


async def test_the_tier_multiplier_stacks_with_promotions_within_the_cap(api: Api) -> None:
    member = await _shop(api)
    for amount in ("3000", "1000", "1000"):
        await accrue_at(api, member, "HUB", amount)
    assert (await promote(api, "HUB", "Anniversary", accrualMultiplier="3"))["ok"]
    assert (await accrue_at(api, member, "HUB", "100"))["points"] == 600  # x2 (Gold) x3
    assert (await promote(api, "HUB", "Grand opening", accrualMultiplier="5"))["ok"]
    assert (await accrue_at(api, member, "HUB", "100"))["points"] == 2000  # x30, capped at x20


async def test_a_tiers_discount_applies_to_mall_prices_paid_in_its_program(
    api: Api, db_url: str
) -> None:
    gold = await _shop(api)
    plain = await enroll(api, "HUB", "H-2", "Zhang Min")
    await register(api, "jade", "JADE", pointValue="0.10")
    await set_rate(api, "HUB", "JADE", "1")
    await upsert_reward(
        api, ref="MEAL", kind="MEAL", title="Set meal", price=1000, merchantId="jade"
    )
    for amount in ("3000", "1000", "1000"):
        await accrue_at(api, gold, "HUB", amount)
    await accrue_at(api, plain, "HUB", "2000")
    query = '{ reward(id: "jade:MEAL") { price priceIn(program: "HUB") } }'
    storefront = await create_key(api, "STOREFRONT")
    gold_token = await member_session(api, gold)
    seen = await api.gql(query, key=storefront, member_token=gold_token)
    # Gold pays 10% less in HUB; the reward's own price in JADE is not HUB's to discount.
    assert seen["reward"] == {"price": 1000, "priceIn": 900}
    assert (await api.gql(query, key=storefront, member_token=await member_session(api, plain)))[
        "reward"
    ] == {"price": 1000, "priceIn": 1000}
    assert (await api.gql(query))["reward"] == {"price": 1000, "priceIn": 1000}
    paid = await redeem(api, gold, "jade:MEAL", "HUB", key=storefront, member_token=gold_token)
    assert paid["userErrors"] == [] and paid["redemption"]["points"] == 900
    full = await redeem(api, plain, "jade:MEAL", "HUB")
    assert full["redemption"]["points"] == 1000
    # HUB gives the discount: what it owes Jade is the same for both.
    owed = [o for o in await obligations(db_url) if o["kind"] == "REDEMPTION"]
    assert [o["amount"] for o in owed] == [Decimal("100.0000"), Decimal("100.0000")]
    assert await verify_ledger(db_url) == []


async def test_a_program_without_tiers_shows_no_tier_status(api: Api) -> None:
    await register(api, "jade", "JADE")
    member = await enroll(api, "JADE", "J-1")
    await accrue_at(api, member, "JADE", "100")
    assert (await standing(api, member, "JADE"))["tier"] is None


def _hub(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HUB_DATABASE_URL": db_url, "HUB_LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "hub", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


async def test_hub_review_tiers_runs_todays_review_by_hand(api: Api, db_url: str) -> None:
    member = await _shop(api)
    for amount in ("600", "600"):
        await accrue_at(api, member, "HUB", amount, add_months(NOW, -11))
    await _age(db_url, member, 2)
    first = _hub(db_url, "review-tiers")
    assert first.returncode == 0, first.stderr
    assert "reviewed 1 members in 1 programs: 1 down, 0 up" in first.stdout
    again = _hub(db_url, "review-tiers")
    assert "reviewed 0 members in 0 programs" in again.stdout
    assert (await standing(api, member, "HUB"))["tier"]["tier"] is None
