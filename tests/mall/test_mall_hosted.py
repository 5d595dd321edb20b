"""The mall with hosted merchants: catalog, prices in any program, redemption, cancellation."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from tests.helpers import (
    UPSERT,
    Api,
    accrue,
    balances,
    cancel_redemption,
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

CATALOG = """
query Catalog($filter: RewardFilter, $first: Int, $after: String, $in: ID!) {
  rewards(filter: $filter, first: $first, after: $after) {
    edges { cursor node { id title price listPrice priceIn(program: $in) payableWith { code }
                          available stock settlementPrice } }
    pageInfo { hasNextPage endCursor }
    unavailableMerchants { id }
  }
}"""


@pytest.fixture
async def mall(api: Api) -> dict[str, Any]:
    await register(api, "haowu", "HUB", category="PLATFORM", pointValue="0.10")
    await register(api, "clearview", "CLEAR", category="RETAIL", pointValue="0.05")
    await register(
        api, "jade", "JADE", category="RESTAURANT", pointValue="0.125", compensationPercent="10"
    )
    keys = {m: await create_key(api, "MERCHANT", m) for m in ("clearview", "jade")}
    lens = await upsert_reward(
        api,
        keys["clearview"],
        ref="LENS",
        kind="GOODS",
        title="Blue-light lens pair",
        price=2000,
        stock=10,
    )
    exam = await upsert_reward(
        api, keys["clearview"], ref="EYE-EXAM", kind="SERVICE", title="Eye exam", price=1000
    )
    meal = await upsert_reward(
        api,
        keys["jade"],
        ref="SET-MEAL",
        kind="MEAL",
        title="Set meal",
        price=200,
        description="A 25-yuan meal",
    )
    await set_rate(api, "HUB", "CLEAR", "2")
    await set_rate(api, "HUB", "JADE", "0.8")
    await set_rate(api, "JADE", "HUB", "1.25")
    member = await enroll(api, "HUB", "H-1", "Liu Yang")
    await enroll(api, "JADE", "J-1", member_id=member)
    await enroll(api, "CLEAR", "C-1", member_id=member)
    await accrue(api, member, "HUB", "5000")
    await accrue(api, member, "JADE", "1000")
    return {"keys": keys, "lens": lens, "exam": exam, "meal": meal, "member": member}


async def test_upsert_reward_validates_and_belongs_to_its_merchant(
    api: Api, mall: dict[str, Any]
) -> None:
    assert mall["meal"]["id"] == "jade:SET-MEAL"
    assert mall["meal"]["settlementPrice"] == "25.00"  # 200 x 0.125
    now = await api.gql('{ reward(id: "jade:SET-MEAL") { payableWith { code } } }')
    assert [p["code"] for p in now["reward"]["payableWith"]] == ["HUB", "JADE"]
    for change, field in [
        ({"price": 0}, "price"),
        ({"ref": "bad ref!"}, "ref"),
        ({"title": " "}, "title"),
        ({"stock": -1}, "stock"),
        ({"settlementPrice": "1.234"}, "settlementPrice"),
    ]:
        data = await api.gql(
            UPSERT,
            {"input": {"ref": "X", "kind": "GOODS", "title": "x", "price": 5, **change}},
            key=mall["keys"]["jade"],
        )
        assert data["upsertReward"]["userErrors"][0]["field"] == ["input", field], change
    broken = await api.gql(
        UPSERT,
        {"input": {"ref": "T7", "kind": "MEAL", "title": "line\nbreak", "price": 5}},
        key=mall["keys"]["jade"],
    )
    [error] = broken["upsertReward"]["userErrors"]
    assert error["field"] == ["input", "title"] and "one line" in error["message"]
    underscore = await api.gql(
        UPSERT,
        {"input": {"ref": "_X", "kind": "GOODS", "title": "x", "price": 5}},
        key=mall["keys"]["jade"],
    )
    [error] = underscore["upsertReward"]["userErrors"]
    assert "beginning with a letter or digit" in error["message"]
    # Updating changes the one reward, under the same id.
    again = await upsert_reward(
        api,
        mall["keys"]["jade"],
        ref="SET-MEAL",
        kind="MEAL",
        title="Set meal (new menu)",
        price=220,
    )
    assert again["id"] == "jade:SET-MEAL" and again["price"] == 220
    # The contract's RewardInput names no merchant: ADMIN's reward without merchantId is
    # the platform's own (outside attack, low: ADMIN was refused for a field it cannot send).
    admin = await upsert_reward(api, ref="X", kind="GOODS", title="x", price=5)
    assert admin["id"] == "haowu:X"
    assert admin["merchant"]["id"] == "haowu"


async def test_catalog_prices_in_any_program_and_filters(api: Api, mall: dict[str, Any]) -> None:
    data = await api.gql(CATALOG, {"in": "HUB"})
    nodes = {e["node"]["id"]: e["node"] for e in data["rewards"]["edges"]}
    assert set(nodes) == {"clearview:EYE-EXAM", "clearview:LENS", "jade:SET-MEAL"}
    # 2000 CLEAR at 2 CLEAR per HUB: 1000 HUB; 200 JADE at 0.8: 250 HUB.
    assert nodes["clearview:LENS"]["priceIn"] == 1000
    assert nodes["jade:SET-MEAL"]["priceIn"] == 250
    in_jade = await api.gql(CATALOG, {"in": "JADE"})
    by_id = {e["node"]["id"]: e["node"]["priceIn"] for e in in_jade["rewards"]["edges"]}
    # JADE -> CLEAR routes through HUB: 1000 HUB needs 800 JADE (800 x 1.25 = 1000).
    assert by_id == {"clearview:EYE-EXAM": 400, "clearview:LENS": 800, "jade:SET-MEAL": 200}

    async def ids(filter_: dict[str, Any]) -> list[str]:
        found = await api.gql(CATALOG, {"in": "HUB", "filter": filter_})
        return [e["node"]["id"] for e in found["rewards"]["edges"]]

    assert await ids({"merchant": "jade"}) == ["jade:SET-MEAL"]
    assert await ids({"category": "RETAIL"}) == ["clearview:EYE-EXAM", "clearview:LENS"]
    assert await ids({"kind": "SERVICE"}) == ["clearview:EYE-EXAM"]
    assert await ids({"search": "lens"}) == ["clearview:LENS"]
    # A search is for its text: % and _ are characters, not wildcards (no title has them).
    for text in ("%", "_", "l_ns", "%lens", "\\"):
        assert await ids({"search": text}) == [], text
    assert await ids({"payableWith": "HUB", "maxPrice": 500}) == [
        "clearview:EYE-EXAM",
        "jade:SET-MEAL",
    ]
    assert await ids({"maxPrice": 500}) == ["jade:SET-MEAL"]
    assert await ids({"payableWith": "CLEAR"}) == ["clearview:EYE-EXAM", "clearview:LENS"]


async def test_search_folds_case_in_every_script_and_refuses_overlong_text(
    api: Api, mall: dict[str, Any]
) -> None:
    """A search matches whatever the case, in any script, the same on SQLite and PostgreSQL
    (both fold as Python's casefold after NFKC); a search too long for a title or a
    description is INVALID_INPUT, with nothing of the database in the message."""
    jade = mall["keys"]["jade"]
    for ref, title, description in [
        ("ECLAIR", "ÉCLAIR AU CHOCOLAT", None),
        ("ODOS", "ΟΔΟΣ ΠΡΟΣ ΤΗ ΘΑΛΑΣΣΑ", "Κρασί"),  # the Greek capital sigma ends a word
        ("STRASSE", "Straßenfest plate", "ﬁsh of the day"),  # ß and the ligature fi
    ]:
        await upsert_reward(
            api, jade, ref=ref, kind="MEAL", title=title, price=100, description=description
        )

    async def ids(search: str) -> list[str]:
        data = await api.gql(CATALOG, {"in": "HUB", "filter": {"search": search}})
        return [e["node"]["id"] for e in data["rewards"]["edges"]]

    for term in ("éclair", "ÉCLAIR", "Éclair au", "e\u0301clair"):  # the last: é decomposed
        assert await ids(term) == ["jade:ECLAIR"], term
    for term in ("οδος", "ΟΔΟΣ", "οδοσ", "θαλ", "κρασί"):
        assert await ids(term) == ["jade:ODOS"], term
    for term in ("STRASSEN", "straßen", "FISH", "ﬁsh"):
        assert await ids(term) == ["jade:STRASSE"], term
    assert await ids("  LENS ") == ["clearview:LENS"]
    # The title and the description are two texts: a term does not run from one into the
    # other.
    assert await ids("meal a 25") == []
    assert len(await ids("   ")) == 6  # only spaces: no search
    zero_width = "\u200b"
    for term, why in [
        ("x" * 201, "longer than 200"),
        ("x" * 50_000, "longer than 200"),
        ("x" * 199 + zero_width * 5, "longer than 200"),  # as sent, invisible ones too
        (zero_width * 300, "longer than 200"),
    ]:
        errors = await api.errors(CATALOG, {"in": "HUB", "filter": {"search": term}})
        assert errors[0]["extensions"]["code"] == "INVALID_INPUT", errors
        assert why in errors[0]["message"] and "SELECT" not in str(errors)
    errors = await api.errors(CATALOG, {"in": "HUB", "filter": {"search": "a\x00b"}})
    assert errors[0]["extensions"]["code"] == "INVALID_INPUT"


async def test_pagination_never_repeats_or_skips(api: Api, mall: dict[str, Any]) -> None:
    for i in range(23):
        await upsert_reward(
            api,
            mall["keys"]["jade"],
            ref=f"DISH-{i:02d}",
            kind="MEAL",
            title=f"Dish {i}",
            price=100 + i,
        )
    seen: list[str] = []
    after = None
    while True:
        page = (await api.gql(CATALOG, {"in": "HUB", "first": 7, "after": after}))["rewards"]
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == 26 and len(set(seen)) == 26 and seen == sorted(seen)


async def test_redeem_charges_price_in_and_owes_settlement(
    api: Api, mall: dict[str, Any], db_url: str
) -> None:
    member = mall["member"]
    payload = await redeem(api, member, "clearview:LENS", "HUB")
    assert payload["userErrors"] == []
    redemption = payload["redemption"]
    assert redemption["status"] == "CONFIRMED"
    assert redemption["points"] == 1000
    assert redemption["fulfillmentRef"]
    assert redemption["settlementPrice"] == "100.00"  # 2000 CLEAR x 0.05
    assert (await balances(api, member))["HUB"] == 4000
    owed = await obligations(db_url)
    assert [(o["kind"], o["debtor"], o["creditor"], o["amount"]) for o in owed] == [
        ("REDEMPTION", "haowu", "clearview", Decimal("100.00"))
    ]
    stock = await api.gql('{ reward(id: "clearview:LENS") { stock } }')
    assert stock["reward"]["stock"] == 9
    own = await redeem(api, member, "jade:SET-MEAL", "JADE")
    assert own["redemption"]["points"] == 200
    assert len(await obligations(db_url)) == 1  # paying with its own program owes no one
    assert await verify_ledger(db_url) == []


async def test_redemption_beyond_the_balance_changes_nothing(
    api: Api, mall: dict[str, Any], db_url: str
) -> None:
    member = mall["member"]
    payload = await redeem(api, member, "clearview:LENS", "HUB", quantity=6)
    assert payload["redemption"] is None
    assert payload["userErrors"][0]["code"] == "INSUFFICIENT_POINTS"
    assert (await balances(api, member))["HUB"] == 5000
    assert (await api.gql('{ reward(id: "clearview:LENS") { stock } }'))["reward"]["stock"] == 10
    assert await obligations(db_url) == []


async def test_last_unit_under_50_concurrent_redemptions(
    api: Api, mall: dict[str, Any], db_url: str
) -> None:
    await upsert_reward(
        api,
        mall["keys"]["clearview"],
        ref="LAST",
        kind="GOODS",
        title="Last frame",
        price=100,
        stock=1,
    )
    members = []
    for i in range(50):
        m = await enroll(api, "HUB", f"H-{i + 100}")
        await accrue(api, m, "HUB", "100")
        members.append(m)
    results = await asyncio.gather(*[redeem(api, m, "clearview:LAST", "HUB") for m in members])
    winners = [r for r in results if r["redemption"] and r["redemption"]["status"] == "CONFIRMED"]
    losers = [r for r in results if r["userErrors"]]
    assert len(winners) == 1 and len(losers) == 49
    assert {r["userErrors"][0]["code"] for r in losers} == {"OUT_OF_STOCK"}
    spent = [m for m in members if (await balances(api, m))["HUB"] != 100]
    assert len(spent) == 1  # only the winner paid
    assert await verify_ledger(db_url) == []


async def test_one_redemption_retried_twenty_times_at_once_redeems_once(
    api: Api, mall: dict[str, Any], db_url: str
) -> None:
    """The key's claim carries the redemption's id (chosen before it is made): twenty
    concurrent retries get that one redemption, one unit of stock and one payment."""
    member = mall["member"]
    before = (await balances(api, member))["HUB"]
    results = await asyncio.gather(
        *[redeem(api, member, "clearview:LENS", "HUB", idempotency_key="till-9") for _ in range(20)]
    )
    assert all(r["userErrors"] == [] for r in results), results
    assert len({r["redemption"]["id"] for r in results}) == 1
    paid = results[0]["redemption"]["points"]
    assert paid > 0 and {r["redemption"]["points"] for r in results} == {paid}
    assert (await balances(api, member))["HUB"] == before - paid
    assert (await api.gql('{ reward(id: "clearview:LENS") { stock } }'))["reward"]["stock"] == 9
    assert len(await obligations(db_url)) == 1
    assert await verify_ledger(db_url) == []


async def test_member_cancels_and_gets_the_points_back(
    api: Api, mall: dict[str, Any], db_url: str
) -> None:
    member = mall["member"]
    storefront = await create_key(api, "STOREFRONT")
    token = await member_session(api, member)
    done = await redeem(api, member, "clearview:LENS", "HUB", key=storefront, member_token=token)
    rid = done["redemption"]["id"]
    refused = await cancel_redemption(
        api, rid, "MERCHANT_CANCELLED", key=storefront, member_token=token
    )
    assert refused["userErrors"][0]["code"] == "FORBIDDEN"
    cancelled = await cancel_redemption(api, rid, key=storefront, member_token=token)
    assert cancelled["userErrors"] == []
    assert cancelled["redemption"]["status"] == "CANCELLED"
    assert cancelled["redemption"]["refundedPoints"] == 1000
    assert cancelled["redemption"]["compensationPoints"] == 0
    assert (await balances(api, member))["HUB"] == 5000
    again = await cancel_redemption(api, rid, key=storefront, member_token=token)
    assert again["userErrors"][0]["code"] == "INVALID_STATE"
    assert again["userErrors"][0]["message"] == "The redemption is already cancelled."
    owed = await obligations(db_url)
    assert [(o["kind"], o["debtor"], o["creditor"]) for o in owed] == [
        ("REDEMPTION", "haowu", "clearview"),
        ("REFUND", "clearview", "haowu"),
    ]
    assert (await api.gql('{ reward(id: "clearview:LENS") { stock } }'))["reward"]["stock"] == 10
    assert await verify_ledger(db_url) == []


SEEN = "query($id: ID!) { redemption(id: $id) { id } }"


async def test_merchant_cancellation_refunds_and_compensates(
    api: Api, mall: dict[str, Any], db_url: str
) -> None:
    member = mall["member"]
    done = await redeem(api, member, "jade:SET-MEAL", "HUB", quantity=2)
    assert done["redemption"]["points"] == 500
    other = await create_key(api, "MERCHANT", "clearview")
    refused = await cancel_redemption(
        api, done["redemption"]["id"], "MERCHANT_CANCELLED", key=other
    )
    assert refused["userErrors"][0]["code"] == "NOT_FOUND"
    # The paying program's merchant sees the redemption (it owes for it) but does not
    # cancel another's sale: FORBIDDEN with the reason, not a false NOT_FOUND (outside
    # attack, low).
    payer = await create_key(api, "MERCHANT", "haowu")
    assert (await api.gql(SEEN, {"id": done["redemption"]["id"]}, key=payer))["redemption"]
    refused = await cancel_redemption(
        api, done["redemption"]["id"], "MERCHANT_CANCELLED", key=payer
    )
    [error] = refused["userErrors"]
    assert error["code"] == "FORBIDDEN" and "jade" in error["message"], error
    cancelled = await cancel_redemption(
        api, done["redemption"]["id"], "MERCHANT_CANCELLED", key=mall["keys"]["jade"]
    )
    assert cancelled["redemption"]["refundedPoints"] == 500
    assert cancelled["redemption"]["compensationPoints"] == 50  # 10% of 500
    assert (await balances(api, member))["HUB"] == 5050
    owed = await obligations(db_url)
    # The redemption and its refund name the line's price in JADE (2 x 200), valued on
    # jade's side as a conversion leg is; the compensation is in HUB, where it is credited.
    assert [
        (o["kind"], o["debtor"], o["creditor"], o["program"], o["points"], o["amount"])
        for o in owed
    ] == [
        ("REDEMPTION", "haowu", "jade", "JADE", 400, Decimal("50.00")),
        ("REFUND", "jade", "haowu", "JADE", 400, Decimal("50.00")),
        ("COMPENSATION", "jade", "haowu", "HUB", 50, Decimal("5.00")),
    ]
    assert await verify_ledger(db_url) == []


async def test_redemption_discount_applies_within_its_period(
    api: Api, mall: dict[str, Any]
) -> None:
    now = dt.datetime.now(dt.UTC)
    data = await api.gql(
        "mutation P($input: PromotionInput!) { setPromotion(input: $input) "
        "{ ok userErrors { code } } }",
        {
            "input": {
                "program": "CLEAR",
                "redemptionDiscountPercent": "25",
                "startsAt": (now - dt.timedelta(hours=1)).isoformat(),
                "endsAt": (now + dt.timedelta(hours=1)).isoformat(),
                "label": "Eye-care day",
            }
        },
        key=mall["keys"]["clearview"],
    )
    assert data["setPromotion"]["ok"]
    lens = await api.gql(
        '{ reward(id: "clearview:LENS") { price listPrice priceIn(program: "HUB")'
        " settlementPrice } }"
    )
    assert lens["reward"] == {
        "price": 1500,
        "listPrice": 2000,
        "priceIn": 750,
        "settlementPrice": "75.00",
    }
    charged = await redeem(api, mall["member"], "clearview:LENS", "HUB")
    assert charged["redemption"]["points"] == 750


async def test_slots_for_hosted_rewards_and_slot_rules(api: Api, mall: dict[str, Any]) -> None:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=2)
    await upsert_reward(
        api,
        mall["keys"]["clearview"],
        ref="EXAM-SLOT",
        kind="SERVICE",
        title="Eye exam at 10",
        price=1000,
        slots=[
            {
                "ref": "A",
                "startsAt": start.isoformat(),
                "endsAt": (start + dt.timedelta(minutes=30)).isoformat(),
                "capacity": 1,
            }
        ],
    )
    slots = await api.gql('{ reward(id: "clearview:EXAM-SLOT") { slots { id remaining } } }')
    assert slots["reward"]["slots"] == [{"id": "clearview:EXAM-SLOT@A", "remaining": 1}]
    member = mall["member"]
    missing = await redeem(api, member, "clearview:EXAM-SLOT", "HUB")
    assert missing["userErrors"][0]["field"] == ["input", "slotId"]
    first = await redeem(api, member, "clearview:EXAM-SLOT", "HUB", slot_id="clearview:EXAM-SLOT@A")
    assert first["redemption"]["slot"] == {"id": "clearview:EXAM-SLOT@A"}
    full = await redeem(api, member, "clearview:EXAM-SLOT", "HUB", slot_id="clearview:EXAM-SLOT@A")
    assert full["userErrors"][0]["code"] == "SLOT_UNAVAILABLE"
    assert (await balances(api, member))["HUB"] == 4500


def _slot(ref: str, start: dt.datetime, capacity: int | None = None) -> dict[str, Any]:
    return {
        "ref": ref,
        "startsAt": start.isoformat(),
        "endsAt": (start + dt.timedelta(hours=1)).isoformat(),
        "capacity": capacity,
    }


SLOTTED_KINDS = [
    "HOTEL_NIGHT",
    "ROOM_UPGRADE",
    "HOTEL_SERVICE",
    "AWARD_FLIGHT",
    "ATTRACTION_TICKET",
]


@pytest.mark.parametrize("kind", SLOTTED_KINDS)
async def test_a_reward_booked_by_slot_is_not_published_without_a_slot_ahead(
    api: Api, mall: dict[str, Any], kind: str
) -> None:
    """Outside attack (medium): a hosted ROOM_UPGRADE could be published with no slot, listed
    available, and never redeemed (every redemption: "needs a slot"). Now it is refused,
    naming `slots`, and nothing is written; a slot that has started does not count."""
    key = mall["keys"]["clearview"]
    past = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=1)
    for slots in (None, [], [_slot("GONE", past)]):
        data = await api.gql(
            UPSERT,
            {"input": {"ref": "UP", "kind": kind, "title": "Upgrade", "price": 50, "slots": slots}},
            key=key,
        )
        [error] = data["upsertReward"]["userErrors"]
        assert error["code"] == "INVALID_INPUT" and error["field"] == ["input", "slots"], error
        assert "slot" in error["message"] and data["upsertReward"]["reward"] is None
        assert (await api.gql('{ reward(id: "clearview:UP") { id } }'))["reward"] is None


async def test_a_full_or_past_slotted_reward_is_not_available(
    api: Api, mall: dict[str, Any]
) -> None:
    key, member = mall["keys"]["clearview"], mall["member"]
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)
    reward = await upsert_reward(
        api,
        key,
        ref="UP",
        kind="ROOM_UPGRADE",
        title="Upgrade",
        price=50,
        slots=[_slot("D1", start, capacity=1)],
    )
    assert reward["available"] is True
    done = await redeem(api, member, "clearview:UP", "HUB", slot_id="clearview:UP@D1")
    assert done["userErrors"] == [] and done["redemption"]["status"] == "CONFIRMED"
    # Its one place is taken: listed, but not available (as a reward out of stock).
    seen = await api.gql('{ reward(id: "clearview:UP") { available requiresSlot } }')
    assert seen["reward"] == {"available": False, "requiresSlot": True}
    # An edit with the slot still ahead (full) is an edit, not a publication: allowed, and
    # so is withdrawing it.
    edited = await upsert_reward(
        api, key, ref="UP", kind="ROOM_UPGRADE", title="Upgrade (sea view)", price=50
    )
    assert edited["title"] == "Upgrade (sea view)" and edited["available"] is False
    withdrawn = await upsert_reward(
        api, key, ref="UP", kind="ROOM_UPGRADE", title="Upgrade", price=50, active=False
    )
    assert withdrawn["available"] is False
    # A SERVICE given slots is booked by slot as well.
    await upsert_reward(
        api,
        key,
        ref="EXAM-9",
        kind="SERVICE",
        title="Exam at 9",
        price=100,
        slots=[_slot("A", start, capacity=1)],
    )
    await redeem(api, member, "clearview:EXAM-9", "HUB", slot_id="clearview:EXAM-9@A")
    page = await api.gql(CATALOG, {"filter": {"merchant": "clearview"}, "first": 50, "in": "HUB"})
    available = {e["node"]["id"]: e["node"]["available"] for e in page["rewards"]["edges"]}
    assert available["clearview:EXAM-9"] is False and "clearview:UP" not in available  # withdrawn
    assert available["clearview:LENS"] is True and available["clearview:EYE-EXAM"] is True


async def test_upserting_a_slot_again_keeps_its_bookings(api: Api, mall: dict[str, Any]) -> None:
    """A slot's capacity is its places in all: giving the slot again (to change its times,
    say) must not hand out the places already booked a second time."""
    key, member = mall["keys"]["clearview"], mall["member"]
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)

    async def upsert(capacity: int | None) -> dict[str, Any]:
        data = await api.gql(
            UPSERT,
            {
                "input": {
                    "ref": "TOUR",
                    "kind": "ATTRACTION_TICKET",
                    "title": "Tour",
                    "price": 100,
                    "slots": [_slot("AM", start, capacity)],
                }
            },
            key=key,
        )
        return data["upsertReward"]  # type: ignore[no-any-return]

    assert (await upsert(2))["userErrors"] == []
    await redeem(api, member, "clearview:TOUR", "HUB", slot_id="clearview:TOUR@AM")
    remaining = '{ reward(id: "clearview:TOUR") { slots { remaining } } }'
    assert (await api.gql(remaining))["reward"]["slots"] == [{"remaining": 1}]
    assert (await upsert(2))["userErrors"] == []
    assert (await api.gql(remaining))["reward"]["slots"] == [{"remaining": 1}]
    await redeem(api, member, "clearview:TOUR", "HUB", slot_id="clearview:TOUR@AM")
    full = await redeem(api, member, "clearview:TOUR", "HUB", slot_id="clearview:TOUR@AM")
    assert full["userErrors"][0]["code"] == "SLOT_UNAVAILABLE"
    # Below what is booked: refused, naming the slot's capacity; nothing changes.
    [error] = (await upsert(1))["userErrors"]
    assert error["field"] == ["input", "slots", "0", "capacity"] and "2" in error["message"]
    [error] = (await upsert(-1))["userErrors"]
    assert error["field"] == ["input", "slots", "0", "capacity"]
    assert (await api.gql(remaining))["reward"]["slots"] == [{"remaining": 0}]
    assert (await upsert(5))["userErrors"] == []
    assert (await api.gql(remaining))["reward"]["slots"] == [{"remaining": 3}]
    assert (await upsert(None))["userErrors"] == []
    assert (await api.gql(remaining))["reward"]["slots"] == [{"remaining": None}]
    assert (await upsert(3))["userErrors"] == []
    assert (await api.gql(remaining))["reward"]["slots"] == [{"remaining": 1}]


async def test_an_edit_without_stock_keeps_the_stock(api: Api, mall: dict[str, Any]) -> None:
    """Outside attack (low): an edit of the title alone made a limited reward unlimited.
    Absent, `stock` is left as it is; null makes it unlimited; a number is what is left."""
    key, member = mall["keys"]["clearview"], mall["member"]
    await redeem(api, member, "clearview:LENS", "HUB")
    lens = {"ref": "LENS", "kind": "GOODS", "price": 2000}
    edited = await upsert_reward(api, key, **lens, title="Lens pair")
    assert edited["stock"] == 9
    restocked = await upsert_reward(api, key, **lens, title="Lens pair", stock=20)
    assert restocked["stock"] == 20
    unlimited = await upsert_reward(api, key, **lens, title="Lens pair", stock=None)
    assert unlimited["stock"] is None
    new = await upsert_reward(api, key, ref="CLOTH", kind="GOODS", title="Cloth", price=10)
    assert new["stock"] is None


async def test_price_in_a_program_the_member_does_not_hold_is_null(
    api: Api, mall: dict[str, Any]
) -> None:
    """Outside attack (low): a storefront was shown a price in a program its member holds
    no account in, and redeeming with it was NOT_FOUND ("not enrolled"). The member cannot
    pay from it: null, as the contract says; once enrolled, the price."""
    await register(api, "teahouse", "TEA", category="RESTAURANT", pointValue="0.01")
    await set_rate(api, "TEA", "HUB", "0.1")
    member = mall["member"]
    storefront = await create_key(api, "STOREFRONT")
    token = await member_session(api, member)
    query = """{ reward(id: "clearview:LENS") { priceIn(program: "TEA") hub: priceIn(program: "HUB")
                 payableWith { code } } }"""
    seen = await api.gql(query, key=storefront, member_token=token)
    assert seen["reward"]["priceIn"] is None and seen["reward"]["hub"] == 1000
    page = await api.gql(
        CATALOG,
        {"filter": {"payableWith": "TEA"}, "first": 50, "in": "TEA"},
        key=storefront,
        member_token=token,
    )
    assert page["rewards"]["edges"] == []
    # Not a member's view: what the reward costs from TEA.
    assert (await api.gql(query))["reward"]["priceIn"] == 10000
    await enroll(api, "TEA", "T-1", member_id=member)
    enrolled = await api.gql(query, key=storefront, member_token=token)
    assert enrolled["reward"]["priceIn"] == 10000


async def test_a_price_no_balance_could_hold_is_null_not_an_error(
    api: Api, mall: dict[str, Any]
) -> None:
    """Outside attack helper-83 (medium): a reward priced at 100,000,000 LUX, payable from
    HUB at 1,000 HUB a LUX point, had `priceIn(program: "HUB")` fail with INTERNAL ("Int
    cannot represent non 32-bit signed integer value"), nulling the field on the rewards
    page too. No balance holds that many points, so HUB cannot pay: null, as the contract
    says, and no error. (Low: redeeming two was refused in a conversion's words.)"""
    await register(api, "lux", "LUX", category="RETAIL", pointValue="100")
    await set_rate(api, "HUB", "LUX", "0.001")
    key = await create_key(api, "MERCHANT", "lux")
    await upsert_reward(api, key, ref="Y", kind="GOODS", title="Yacht", price=100_000_000)
    query = """{ reward(id: "lux:Y") { price priceIn(program: "HUB") } }"""
    seen = await api.gql(query)
    assert seen["reward"] == {"price": 100_000_000, "priceIn": None}
    # (low) Two of them would move 200,000,000 LUX through the rate: said of a redemption.
    refused = await redeem(api, mall["member"], "lux:Y", "HUB", quantity=2)
    (error,) = refused["userErrors"]
    assert error["code"] == "INVALID_INPUT" and error["field"] == ["input", "quantity"], error
    assert "redeem fewer" in error["message"] and "convert" not in error["message"], error
    affordable = await upsert_reward(
        api, key, ref="Y", kind="GOODS", title="Yacht", price=2_000_000
    )
    assert affordable["price"] == 2_000_000
    assert (await api.gql(query))["reward"]["priceIn"] == 2_000_000_000


async def test_the_answer_shows_the_reward_as_the_redemption_left_it(
    api: Api, mall: dict[str, Any]
) -> None:
    """The redemption's answer takes its reward from the redemption's own transaction (not
    read again): the stock it shows has this redemption's units taken, and so does a
    retried request's (whose reward is read)."""
    document = """mutation R($input: RedeemRewardInput!) { redeemReward(input: $input) {
        redemption { reward { id stock available price } } userErrors { code } } }"""
    given = {
        "memberId": mall["member"],
        "rewardId": "clearview:LENS",
        "payWith": "HUB",
        "quantity": 2,
        "idempotencyKey": "lens-two",
    }
    first = await api.gql(document, {"input": given})
    again = await api.gql(document, {"input": given})
    expected = {"id": "clearview:LENS", "stock": 8, "available": True, "price": 2000}
    assert first["redeemReward"]["redemption"]["reward"] == expected
    assert again["redeemReward"]["redemption"]["reward"] == expected


async def test_a_booked_slot_keeps_its_times_and_refs_are_given_once(
    api: Api, mall: dict[str, Any]
) -> None:
    """Outside attack (medium): a merchant moved a booked slot into the past, and its member
    could no longer cancel (the booking's terms changed after the fact). A slot with places
    booked keeps its times; one with none may move. A ref given twice in one list is
    refused, not settled by the last one."""
    key, member = mall["keys"]["clearview"], mall["member"]
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=30)
    past = start - dt.timedelta(days=60)

    async def upsert(*slots: dict[str, Any]) -> list[dict[str, Any]]:
        data = await api.gql(
            UPSERT,
            {
                "input": {
                    "ref": "SPA",
                    "kind": "HOTEL_SERVICE",
                    "title": "Spa",
                    "price": 40,
                    "slots": list(slots),
                }
            },
            key=key,
        )
        return data["upsertReward"]["userErrors"]  # type: ignore[no-any-return]

    assert await upsert(_slot("a", start, 2), _slot("b", start + dt.timedelta(days=1), 2)) == []
    done = await redeem(api, member, "clearview:SPA", "HUB", slot_id="clearview:SPA@a")
    assert done["userErrors"] == []
    for moved in (_slot("a", past, 2), _slot("a", start + dt.timedelta(hours=1), 2)):
        [error] = await upsert(moved)
        assert error["code"] == "INVALID_STATE", error
        assert (
            error["field"] == ["input", "slots", "0", "startsAt"] and "booked" in error["message"]
        )
    ends_later = {**_slot("a", start, 2), "endsAt": (start + dt.timedelta(hours=3)).isoformat()}
    [error] = await upsert(ends_later)
    assert error["field"] == ["input", "slots", "0", "endsAt"]
    seen = '{ reward(id: "clearview:SPA") { slots { id startsAt remaining } } }'
    slots = (await api.gql(seen))["reward"]["slots"]
    assert [(s["id"], s["remaining"]) for s in slots] == [
        ("clearview:SPA@a", 1),
        ("clearview:SPA@b", 2),
    ]
    assert dt.datetime.fromisoformat(slots[0]["startsAt"]) == start
    # The same times, a new capacity: allowed. An unbooked slot moves.
    assert await upsert(_slot("a", start, 3), _slot("b", start + dt.timedelta(days=2), 2)) == []
    [error] = await upsert(_slot("c", start, 1), _slot("c", start + dt.timedelta(days=1), 5))
    assert error["code"] == "INVALID_INPUT" and error["field"] == ["input", "slots", "1", "ref"]
    assert "c" not in [s["id"][-1] for s in (await api.gql(seen))["reward"]["slots"]]


async def test_more_than_a_slot_has_left_is_not_called_full(api: Api, mall: dict[str, Any]) -> None:
    key, member = mall["keys"]["clearview"], mall["member"]
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=5)
    await upsert_reward(
        api,
        key,
        ref="BOAT",
        kind="ATTRACTION_TICKET",
        title="Boat",
        price=10,
        slots=[_slot("am", start, 2)],
    )
    many = await redeem(
        api, member, "clearview:BOAT", "HUB", slot_id="clearview:BOAT@am", quantity=5
    )
    [error] = many["userErrors"]
    assert error["code"] == "SLOT_UNAVAILABLE" and "fewer than 5" in error["message"], error
    assert (await balances(api, member))["HUB"] == 5000


async def test_more_than_the_stock_left_is_not_called_out_of_stock(
    api: Api, mall: dict[str, Any]
) -> None:
    """Outside attack (low): asking for two of the one left answered "out of stock"; the
    member may still take one."""
    member = mall["member"]
    await upsert_reward(
        api,
        mall["keys"]["clearview"],
        ref="LAST",
        kind="GOODS",
        title="Last one",
        price=10,
        stock=1,
    )
    two = await redeem(api, member, "clearview:LAST", "HUB", quantity=2)
    [error] = two["userErrors"]
    assert error["code"] == "OUT_OF_STOCK" and error["field"] == ["input", "quantity"], error
    assert "Fewer than 2" in error["message"]
    one = await redeem(api, member, "clearview:LAST", "HUB")
    assert one["userErrors"] == []
    gone = await redeem(api, member, "clearview:LAST", "HUB")
    assert gone["userErrors"][0]["message"] == "Last one is out of stock."
