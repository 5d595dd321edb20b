"""Smaller findings of the outside review, each replayed as it was found: a quote used for
many conversions (F6), a FAILED conversion reporting points as moved (F5), a merchant
naming another merchant's catalog silently redirected (F11), and the odds and ends of F12
(phone numbers, bidirectional controls, back-dated accruals, a 30 MB body, messages)."""

from __future__ import annotations

import datetime as dt

from tests.helpers import (
    ACCRUE,
    ENROLL,
    QUOTE,
    Api,
    accrue,
    balances,
    convert,
    create_key,
    enroll,
    register,
    set_rate,
)


async def _two_programs(api: Api) -> str:
    await register(api, "haowu", "HUB", category="PLATFORM", pointValue="0.10")
    await register(api, "jade", "JADE", category="RESTAURANT", pointValue="0.125")
    await set_rate(api, "HUB", "JADE", "0.8")
    member = await enroll(api, "HUB", "H-1")
    await enroll(api, "JADE", "J-1", member_id=member)
    await accrue(api, member, "HUB", "1000")
    return member


async def test_a_quote_holds_its_rate_for_one_conversion(api: Api) -> None:
    member = await _two_programs(api)
    quote = await api.gql(
        QUOTE, {"input": {"memberId": member, "from": "HUB", "to": "JADE", "points": 100}}
    )
    quote_id = quote["quoteConversion"]["quote"]["id"]
    first = await convert(api, member, "HUB", "JADE", 100, quote_id=quote_id)
    assert first["conversion"]["status"] == "COMPLETED", first
    again = await convert(api, member, "HUB", "JADE", 100, quote_id=quote_id)
    assert again["conversion"] is None
    assert again["userErrors"][0]["code"] == "QUOTE_EXPIRED"
    assert first["conversion"]["id"] in again["userErrors"][0]["message"]


async def test_a_failed_conversion_reports_no_points_moved(api: Api) -> None:
    member = await _two_programs(api)
    before = await balances(api, member)
    failed = await convert(api, member, "HUB", "JADE", before["HUB"] + 100)
    assert failed["userErrors"][0]["code"] == "INSUFFICIENT_POINTS"
    if failed["conversion"] is not None:
        moved = failed["conversion"]
        assert moved["status"] == "FAILED"
        assert (moved["pointsDebited"], moved["pointsCredited"]) == (0, 0)
    assert await balances(api, member) == before


async def test_a_merchant_naming_another_merchants_catalog_is_refused(api: Api) -> None:
    await register(api, "jade", "JADE", category="RESTAURANT")
    await register(api, "skyair", "SKYMILES", category="AIRLINE")
    jade = await create_key(api, "MERCHANT", "jade")
    data = await api.gql(
        "mutation U($input: RewardInput!) { upsertReward(input: $input) { reward { id } "
        "userErrors { code field } } }",
        {
            "input": {
                "ref": "ATK",
                "kind": "GOODS",
                "title": "atk",
                "price": 10,
                "merchantId": "skyair",
            }
        },
        key=jade,
    )
    payload = data["upsertReward"]
    assert payload["reward"] is None
    assert payload["userErrors"][0]["code"] == "FORBIDDEN"
    assert (await api.gql('{ reward(id: "jade:ATK") { id } }'))["reward"] is None


async def test_phones_are_phone_numbers_and_names_carry_no_bidirectional_controls(
    api: Api,
) -> None:
    await register(api, "jade", "JADE", category="RESTAURANT")
    base = {"program": "JADE", "externalRef": "J-9", "displayName": "Li"}
    for change, field in (
        ({"phone": "'; DROP TABLE members;--"}, "phone"),
        ({"phone": "12"}, "phone"),
        ({"displayName": "x\u202eevil"}, "displayName"),
        ({"displayName": "Wang\u2066Fang"}, "displayName"),
    ):
        data = await api.gql(ENROLL, {"input": {**base, **change}})
        errors = data["enrollMember"]["userErrors"]
        assert (errors[0]["code"], errors[0]["field"][-1]) == ("INVALID_INPUT", field), change
    fine = await api.gql(ENROLL, {"input": {**base, "phone": "+86 138-0013 (8000)"}})
    assert fine["enrollMember"]["userErrors"] == []


async def test_an_accrual_dated_months_back_is_refused(api: Api) -> None:
    await register(api, "jade", "JADE", category="RESTAURANT")
    member = await enroll(api, "JADE", "J-1")
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=91)).isoformat()
    data = await api.gql(
        ACCRUE,
        {
            "input": {
                "memberId": member,
                "program": "JADE",
                "orderRef": "old",
                "amount": "10",
                "occurredAt": old,
                "idempotencyKey": "old",
            }
        },
    )
    assert data["accruePoints"]["userErrors"][0]["code"] == "INVALID_INPUT"
    assert (await balances(api, member))["JADE"] == 0


async def test_a_body_beyond_four_mebibytes_is_refused_before_it_is_parsed(api: Api) -> None:
    response = await api.client.post(
        "/graphql",
        content=b'{"query": "{ __typename }", "variables": {"x": "' + b"A" * (5 << 20) + b'"}}',
        headers={"Authorization": "Bearer " + (await create_key(api, "ADMIN"))},
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
