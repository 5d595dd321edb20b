"""Exchange through the API: rates, quotes, conversions and their obligations."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from tests.helpers import (
    QUOTE,
    SET_RATE,
    Api,
    balances,
    convert,
    create_key,
    enroll,
    member_session,
    obligations,
    set_rate,
    verify_ledger,
)
from tests.world import World


@pytest.fixture
async def world(world: World) -> dict[str, str]:
    """Platform HUB, airline SKYMILES, hotel LOTUS, restaurant JADE; a member in all four."""
    await world.programs(
        "HUB",
        "SKYMILES",
        "LOTUS",
        "JADE",
        HUB={"pointValue": "0.10"},
        SKYMILES={"pointValue": "0.08"},
        LOTUS={"pointValue": "0.05", "accrualRate": "10"},
        JADE={"pointValue": "0.125"},
    )
    accounts = {"SKYMILES": "SK-1", "HUB": "H-1", "LOTUS": "L-1", "JADE": "J-1"}
    member = await world.member("Zhang Wei", accounts, points={"SKYMILES": "10000"})  # miles
    return {"member": member}


async def test_set_rate_validates_and_keeps_versions(api: Api, world: dict[str, str]) -> None:
    for change, field, code in [
        ({"rate": "0"}, "rate", "INVALID_INPUT"),
        ({"rate": "-1"}, "rate", "INVALID_INPUT"),
        ({"step": 0}, "step", "INVALID_INPUT"),
        ({"step": 100, "minPoints": 50}, "minPoints", "INVALID_INPUT"),
        ({"bonusPercent": "-1"}, "bonusPercent", "INVALID_INPUT"),
        # 0 is no conversion a day, not "no limit" (null): it was stored as null
        ({"dailyLimitPerMember": 0}, "dailyLimitPerMember", "INVALID_INPUT"),
        ({"dailyLimitPerMember": -1}, "dailyLimitPerMember", "INVALID_INPUT"),
        (
            {"minPoints": 500, "step": 100, "dailyLimitPerMember": 400},
            "dailyLimitPerMember",
            "INVALID_INPUT",
        ),
        # a version dated back would show a rate nobody converted at (outside attack, low)
        ({"effectiveFrom": "2025-12-01T00:00:00Z"}, "effectiveFrom", "INVALID_INPUT"),
        ({"to": "SKYMILES"}, "to", "INVALID_INPUT"),
        ({"to": "NOPE"}, "to", "NOT_FOUND"),
    ]:
        data = await api.gql(
            SET_RATE, {"input": {"from": "SKYMILES", "to": "LOTUS", "rate": "1.6", **change}}
        )
        errors = data["setExchangeRate"]["userErrors"]
        assert (errors[0]["field"], errors[0]["code"]) == (["input", field], code), change
    assert (await api.gql("{ exchangeRates { id } }"))["exchangeRates"] == []
    first = await set_rate(api, "SKYMILES", "LOTUS", "1.6", minPoints=100, step=100)
    second = await set_rate(api, "SKYMILES", "LOTUS", "1.5", minPoints=100, step=100)
    listed = (await api.gql('{ exchangeRates(from: "SKYMILES") { id rate } }'))["exchangeRates"]
    assert listed == [{"id": second["id"], "rate": "1.5"}]
    assert first["id"] != second["id"]
    merchant = await create_key(api, "MERCHANT", "skyair")
    errors = await api.errors(
        SET_RATE, {"input": {"from": "SKYMILES", "to": "LOTUS", "rate": "2"}}, key=merchant
    )
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"


async def test_conversion_moves_points_writes_history_and_one_obligation(
    api: Api, world: dict[str, str], db_url: str
) -> None:
    member = world["member"]
    await set_rate(api, "SKYMILES", "LOTUS", "1.5", minPoints=100, step=100, bonusPercent="10")
    payload = await convert(api, member, "SKYMILES", "LOTUS", 1000)
    assert payload["userErrors"] == []
    conversion = payload["conversion"]
    assert conversion["status"] == "COMPLETED"
    assert (conversion["pointsDebited"], conversion["pointsCredited"]) == (1000, 1650)
    assert [p["code"] for p in conversion["route"]] == ["SKYMILES", "LOTUS"]
    assert await balances(api, member) == {"HUB": 0, "JADE": 0, "LOTUS": 1650, "SKYMILES": 9000}
    history = await api.gql(
        "query($id: ID!) { member(id: $id) { history(first: 2) { edges { node "
        "{ kind points reference program { code } } } } } }",
        {"id": member},
    )
    nodes = [e["node"] for e in history["member"]["history"]["edges"]]
    assert {(n["kind"], n["points"], n["program"]["code"]) for n in nodes} == {
        ("CONVERSION_OUT", -1000, "SKYMILES"),
        ("CONVERSION_IN", 1650, "LOTUS"),
    }
    assert {n["reference"] for n in nodes} == {conversion["id"]}
    owed = await obligations(db_url)
    assert owed == [
        {
            "kind": "CONVERSION",
            "debtor": "skyair",
            "creditor": "lotus",
            "program": "LOTUS",
            "points": 1650,
            "amount": Decimal("82.50"),
            "reference": conversion["id"],
            "business_date": owed[0]["business_date"],
        }
    ]
    shanghai = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    assert owed[0]["business_date"] == shanghai
    seen = await api.gql(
        "query($id: ID!) { conversion(id: $id) { id status member { id } } }",
        {"id": conversion["id"]},
    )
    assert seen["conversion"]["status"] == "COMPLETED"
    assert await verify_ledger(db_url) == []


async def test_two_leg_route_through_the_platform_makes_two_obligations(
    api: Api, world: dict[str, str], db_url: str
) -> None:
    member = world["member"]
    await set_rate(api, "SKYMILES", "HUB", "0.8")
    await set_rate(api, "HUB", "JADE", "0.5", bonusPercent="5")
    quote = (
        await api.gql(
            QUOTE, {"input": {"memberId": member, "from": "SKYMILES", "to": "JADE", "points": 999}}
        )
    )["quoteConversion"]["quote"]
    # 999 x 0.8 = 799.2 -> 799 HUB; 799 x 0.5 x 1.05 = 419.475 -> 419 JADE.
    assert (quote["points"], quote["receive"]) == (999, 419)
    assert [p["code"] for p in quote["route"]] == ["SKYMILES", "HUB", "JADE"]
    payload = await convert(api, member, "SKYMILES", "JADE", 999, quote_id=quote["id"])
    assert payload["conversion"]["pointsCredited"] == 419
    owed = await obligations(db_url)
    assert [(o["debtor"], o["creditor"], o["points"], o["amount"]) for o in owed] == [
        ("skyair", "haowu", 799, Decimal("79.90")),
        ("haowu", "jade", 419, Decimal("52.375")),  # 4 places kept; settlement rounds
    ]
    assert await balances(api, member) == {"HUB": 0, "JADE": 419, "LOTUS": 0, "SKYMILES": 9001}
    assert await verify_ledger(db_url) == []


async def test_quote_errors_carry_the_contract_codes(api: Api, world: dict[str, str]) -> None:
    member = world["member"]
    await set_rate(
        api, "SKYMILES", "LOTUS", "1.5", minPoints=500, step=100, dailyLimitPerMember=2000
    )

    async def code_of(source: str, target: str, points: int) -> str:
        data = await api.gql(
            QUOTE, {"input": {"memberId": member, "from": source, "to": target, "points": points}}
        )
        errors = data["quoteConversion"]["userErrors"]
        assert data["quoteConversion"]["quote"] is None
        return str(errors[0]["code"])

    assert await code_of("SKYMILES", "JADE", 1000) == "RATE_NOT_CONFIGURED"
    assert await code_of("SKYMILES", "LOTUS", 400) == "BELOW_MINIMUM"
    assert await code_of("SKYMILES", "LOTUS", 550) == "NOT_A_MULTIPLE_OF_STEP"
    assert await code_of("SKYMILES", "LOTUS", 2100) == "LIMIT_EXCEEDED"
    assert await code_of("SKYMILES", "LOTUS", 0) == "INVALID_INPUT"
    # The range named is what a member could hold, not a bound no Int can reach.
    refused = (await convert(api, member, "SKYMILES", "LOTUS", -5))["userErrors"][0]
    assert refused["message"] == "points must be between 1 and 2,147,483,647.", refused
    await convert(api, member, "SKYMILES", "LOTUS", 1500)
    assert await code_of("SKYMILES", "LOTUS", 600) == "LIMIT_EXCEEDED"
    too_many = await convert(api, member, "SKYMILES", "LOTUS", 500)
    assert too_many["conversion"] is not None  # 1,500 + 500 = the limit exactly
    assert await code_of("SKYMILES", "LOTUS", 500) == "LIMIT_EXCEEDED"


async def test_insufficient_points_moves_nothing(
    api: Api, world: dict[str, str], db_url: str
) -> None:
    member = world["member"]
    await set_rate(api, "SKYMILES", "LOTUS", "1.5")
    payload = await convert(api, member, "SKYMILES", "LOTUS", 10001)
    assert payload["userErrors"][0]["code"] == "INSUFFICIENT_POINTS"
    assert payload["conversion"]["status"] == "FAILED"
    assert await balances(api, member) == {"HUB": 0, "JADE": 0, "LOTUS": 0, "SKYMILES": 10000}
    assert await obligations(db_url) == []
    assert await verify_ledger(db_url) == []


async def test_quote_rate_holds_until_expiry_then_the_new_rate(
    api: Api, world: dict[str, str], db_url: str
) -> None:
    member = world["member"]
    await set_rate(api, "SKYMILES", "LOTUS", "1.5")
    quote = await _quote(api, member, 100)
    await set_rate(api, "SKYMILES", "LOTUS", "2")
    honoured = await convert(api, member, "SKYMILES", "LOTUS", 100, quote_id=quote["id"])
    assert honoured["conversion"]["pointsCredited"] == 150
    current = await convert(api, member, "SKYMILES", "LOTUS", 100)
    assert current["conversion"]["pointsCredited"] == 200
    second = await _quote(api, member, 100)
    await _expire_quote(db_url, second["id"])
    expired = await convert(api, member, "SKYMILES", "LOTUS", 100, quote_id=second["id"])
    assert expired["conversion"] is None
    assert expired["userErrors"][0]["code"] == "QUOTE_EXPIRED"
    assert await balances(api, member) == {"HUB": 0, "JADE": 0, "LOTUS": 350, "SKYMILES": 9800}


async def _quote(api: Api, member: str, points: int) -> dict[str, Any]:
    """A quote for `points` miles into LOTUS."""
    data = await api.gql(
        QUOTE, {"input": {"memberId": member, "from": "SKYMILES", "to": "LOTUS", "points": points}}
    )
    quote: dict[str, Any] = data["quoteConversion"]["quote"]
    return quote


async def _expire_quote(url: str, quote_id: str) -> None:
    from sqlalchemy import update

    from hub.db import Database, utcnow
    from hub.models import Quote

    db = Database(url)
    try:
        async with db.write() as session:
            await session.execute(
                update(Quote)
                .where(Quote.id == quote_id)
                .values(expires_at=utcnow() - dt.timedelta(seconds=1))
            )
    finally:
        await db.dispose()


async def test_convert_is_idempotent_and_for_the_member_only(
    api: Api, world: dict[str, str], db_url: str
) -> None:
    member = world["member"]
    other = await enroll(api, "SKYMILES", "SK-2", "Other")
    await set_rate(api, "SKYMILES", "LOTUS", "1.5")
    storefront = await create_key(api, "STOREFRONT")
    token = await member_session(api, member)
    first = await convert(
        api,
        member,
        "SKYMILES",
        "LOTUS",
        100,
        key=storefront,
        member_token=token,
        idempotency_key="k1",
    )
    again = await convert(
        api,
        member,
        "SKYMILES",
        "LOTUS",
        100,
        key=storefront,
        member_token=token,
        idempotency_key="k1",
    )
    assert again == first
    conflict = await convert(
        api,
        member,
        "SKYMILES",
        "LOTUS",
        200,
        key=storefront,
        member_token=token,
        idempotency_key="k1",
    )
    assert conflict["userErrors"][0]["code"] == "IDEMPOTENCY_CONFLICT"
    foreign = await convert(
        api, other, "SKYMILES", "LOTUS", 100, key=storefront, member_token=token
    )
    assert foreign["userErrors"][0]["code"] == "FORBIDDEN"
    errors = await api.errors(
        'mutation { convertPoints(input: {memberId: "x", from: "A", to: "B", points: 1, '
        'idempotencyKey: "k"}) { userErrors { code } } }',
        key=storefront,
    )
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert await balances(api, member) == {"HUB": 0, "JADE": 0, "LOTUS": 150, "SKYMILES": 9900}
    assert len(await obligations(db_url)) == 1


async def test_concurrent_conversions_never_overdraw(
    api: Api, world: dict[str, str], db_url: str
) -> None:
    member = world["member"]
    await set_rate(api, "SKYMILES", "LOTUS", "1.5")
    results = await asyncio.gather(
        *[convert(api, member, "SKYMILES", "LOTUS", 150) for _ in range(100)]
    )
    done = [r for r in results if r["conversion"] and r["conversion"]["status"] == "COMPLETED"]
    refused = [r for r in results if r["userErrors"]]
    assert len(done) == 66  # 66 x 150 = 9,900 of 10,000
    assert len(done) + len(refused) == 100
    assert {r["userErrors"][0]["code"] for r in refused} == {"INSUFFICIENT_POINTS"}
    assert await balances(api, member) == {
        "HUB": 0,
        "JADE": 0,
        "LOTUS": 66 * 225,
        "SKYMILES": 100,
    }
    assert len(await obligations(db_url)) == 66
    assert await verify_ledger(db_url) == []


async def test_no_cycle_of_rates_returns_more_points_than_it_took(
    api: Api, world: dict[str, str], db_url: str
) -> None:
    """Attack (outside review F3): SKYMILES -> JADE (direct, bonus included) then JADE ->
    HUB -> SKYMILES returned 112.9% of the miles per lap, with money owed for each lap."""
    member = world["member"]
    await set_rate(api, "HUB", "SKYMILES", "1.2")
    await set_rate(api, "JADE", "HUB", "0.95")
    refused = await api.gql(
        SET_RATE,
        {"input": {"from": "SKYMILES", "to": "JADE", "rate": "0.9", "bonusPercent": "10"}},
    )
    error = refused["setExchangeRate"]["userErrors"][0]
    assert (error["field"], error["code"]) == (["input", "rate"], "INVALID_INPUT")
    assert "SKYMILES -> JADE -> HUB -> SKYMILES" in error["message"]
    assert "at most 0.797448" in error["message"]
    # A direct rate back closes a shorter cycle: refused the same way.
    await set_rate(api, "SKYMILES", "JADE", "0.79", bonusPercent="10")
    short = await api.gql(SET_RATE, {"input": {"from": "JADE", "to": "SKYMILES", "rate": "1.2"}})
    assert short["setExchangeRate"]["userErrors"][0]["code"] == "INVALID_INPUT"
    # What remains loses a little on every lap.
    before = (await balances(api, member))["SKYMILES"]
    there = (await convert(api, member, "SKYMILES", "JADE", 1000))["conversion"]
    back = await convert(api, member, "JADE", "SKYMILES", there["pointsCredited"])
    assert back["conversion"]["status"] == "COMPLETED", back
    assert (await balances(api, member))["SKYMILES"] < before
    assert await verify_ledger(db_url) == []


async def test_a_held_quote_counts_in_the_cycle_check(
    api: Api, world: dict[str, str], db_url: str
) -> None:
    """Attack (outside attack, stop 32): a quote holds SKYMILES -> LOTUS at 2; the rate is
    lowered to 1, then LOTUS -> SKYMILES raised to 0.625 (the rates alone pass); the quote
    gave 1,000 LOTUS for 500 miles and 1,000 LOTUS went back as 625 miles: 125 from
    nothing. The check counts every version a quote (or a replica's kept rates) may still
    convert at, until it can no longer be used."""
    member = world["member"]
    await set_rate(api, "SKYMILES", "LOTUS", "2")
    await set_rate(api, "LOTUS", "SKYMILES", "0.4")
    quote = await _quote(api, member, 500)
    await set_rate(api, "SKYMILES", "LOTUS", "1")
    refused = await api.gql(
        SET_RATE, {"input": {"from": "LOTUS", "to": "SKYMILES", "rate": "0.625"}}
    )
    error = refused["setExchangeRate"]["userErrors"][0]
    assert (error["field"], error["code"]) == (["input", "rate"], "INVALID_INPUT"), refused
    assert "LOTUS -> SKYMILES -> LOTUS" in error["message"]
    assert "effectiveFrom" in error["message"]
    # Once nothing can convert at 2 any more, the same rate may start.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    await set_rate(api, "LOTUS", "SKYMILES", "0.625", effectiveFrom=later.isoformat())
    held = await convert(api, member, "SKYMILES", "LOTUS", 500, quote_id=quote["id"])
    assert held["conversion"]["pointsCredited"] == 1000
    back = await convert(api, member, "LOTUS", "SKYMILES", 1000)
    assert back["conversion"]["pointsCredited"] == 400
    assert (await balances(api, member))["SKYMILES"] == 10000 - 500 + 400
    assert await verify_ledger(db_url) == []


async def test_a_rate_is_checked_against_every_version_starting_while_it_holds(
    api: Api, world: dict[str, str]
) -> None:
    """Losing order: LOTUS -> SKYMILES 0.625 set to start tomorrow (SKYMILES -> LOTUS is 1:
    0.625 a lap), then SKYMILES -> LOTUS raised to 2 from now. It was checked at now only,
    so from tomorrow each lap returned 1.25 points per point."""
    await set_rate(api, "SKYMILES", "LOTUS", "1")
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    await set_rate(api, "LOTUS", "SKYMILES", "0.625", effectiveFrom=tomorrow.isoformat())
    refused = await api.gql(SET_RATE, {"input": {"from": "SKYMILES", "to": "LOTUS", "rate": "2"}})
    error = refused["setExchangeRate"]["userErrors"][0]
    assert (error["field"], error["code"]) == (["input", "rate"], "INVALID_INPUT"), refused
    assert "SKYMILES -> LOTUS -> SKYMILES" in error["message"]
    assert "at most 1.6" in error["message"]
    # Until tomorrow it may be 2: the check follows the rate's own period.
    await set_rate(
        api, "SKYMILES", "LOTUS", "2", effectiveTo=(tomorrow - dt.timedelta(hours=1)).isoformat()
    )


async def test_one_conversion_retried_twenty_times_at_once_converts_once(
    api: Api, world: dict[str, str], db_url: str
) -> None:
    """The key's claim now carries the conversion's id (chosen before the conversion is
    made): twenty concurrent retries all get that one conversion, and the miles move once;
    the same key with another amount is a conflict."""
    member = world["member"]
    await set_rate(api, "SKYMILES", "LOTUS", "1.5")
    results = await asyncio.gather(
        *[
            convert(api, member, "SKYMILES", "LOTUS", 150, idempotency_key="till-7")
            for _ in range(20)
        ]
    )
    assert all(r["userErrors"] == [] for r in results), results
    assert len({r["conversion"]["id"] for r in results}) == 1
    assert {r["conversion"]["status"] for r in results} == {"COMPLETED"}
    other = await convert(api, member, "SKYMILES", "LOTUS", 300, idempotency_key="till-7")
    assert [e["code"] for e in other["userErrors"]] == ["IDEMPOTENCY_CONFLICT"]
    assert await balances(api, member) == {"HUB": 0, "JADE": 0, "LOTUS": 225, "SKYMILES": 9850}
    assert len(await obligations(db_url)) == 1
    assert await verify_ledger(db_url) == []
