"""Green points through GraphQL over HTTP: registerProgram(kind: GREEN), purchase lines that
earn the GREEN program beside the primary one in one transaction, promotions for green lines,
GREEN points paying for green-tagged rewards only, and their rates changing by versions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.helpers import (
    QUOTE,
    Api,
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
from tests.loyalty.green_world import (
    ACCRUE_LINES,
    GREEN,
    PROMOTION,
    REGISTER_PROGRAM,
    accrue_lines,
    green_world,
    lines,
    register_green,
    state,
)

MERCHANT = """query M($id: ID!) { merchant(id: $id) {
  program { code kind } programs { code kind name accrualRate expiryMonths } } }"""
SET_RATE = """mutation R($input: ExchangeRateInput!) {
  setExchangeRate(input: $input) { rate { id } userErrors { field message code } } }"""
NOW = dt.datetime.now(dt.UTC)


# haowu's GREEN program, as the tests register it.
HAOWU_GREEN = {
    "merchantId": "haowu",
    "code": GREEN,
    "name": "Green",
    "kind": "GREEN",
    "pointValue": "0.1",
}


async def test_register_program_gives_a_merchant_a_green_program_beside_its_primary(
    api: Api,
) -> None:
    await register(api, "haowu", "HUB", category="PLATFORM")
    merchant_key = await create_key(api, "MERCHANT", "haowu")
    errors = await api.errors(
        REGISTER_PROGRAM,
        {"input": HAOWU_GREEN},
        key=merchant_key,
    )
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"

    done = await register_green(api)
    assert done["userErrors"] == []
    assert done["program"] == {
        "code": GREEN,
        "name": "Haowu Green Points",
        "unitName": "point",
        "kind": "GREEN",
        "pointValue": "0.1",
        "accrualRate": "2",
        "expiryMonths": 6,
        "connector": "HOSTED",
        "merchant": {"id": "haowu", "program": {"code": "HUB"}},
    }
    found = (await api.gql(MERCHANT, {"id": "haowu"}))["merchant"]
    assert found["program"] == {"code": "HUB", "kind": "STANDARD"}
    assert [(p["code"], p["kind"]) for p in found["programs"]] == [
        ("HUB", "STANDARD"),
        (GREEN, "GREEN"),
    ]

    refused = {
        "a second GREEN program": ({"code": "HUB_ECO"}, "ALREADY_EXISTS", ["input", "kind"]),
        "a second STANDARD one": (
            {"code": "HUB_TWO", "kind": "STANDARD"},
            "ALREADY_EXISTS",
            ["input", "kind"],
        ),
        "an unknown merchant": (
            {"merchantId": "nobody", "code": "NO_ECO"},
            "NOT_FOUND",
            ["input", "merchantId"],
        ),
        "a bad code": ({"code": "green!"}, "INVALID_INPUT", ["input", "code"]),
        "no value": ({"code": "HUB_ECO", "pointValue": "0"}, "INVALID_INPUT", None),
        "a long expiry": ({"code": "HUB_ECO", "expiryMonths": 999}, "INVALID_INPUT", None),
    }
    await register(api, "jade", "JADE", category="RESTAURANT")
    taken = await register_green(api, "jade")
    assert taken["userErrors"][0]["code"] == "ALREADY_EXISTS"
    assert taken["userErrors"][0]["field"] == ["input", "code"]
    for why, (extra, code, field) in refused.items():
        payload = await register_green(api, **extra)
        assert payload["program"] is None, why
        assert payload["userErrors"][0]["code"] == code, (why, payload)
        if field:
            assert payload["userErrors"][0]["field"] == field, why
    programs = (await api.gql("{ programs { code kind } }"))["programs"]
    assert programs == [
        {"code": "HUB", "kind": "STANDARD"},
        {"code": GREEN, "kind": "GREEN"},
        {"code": "JADE", "kind": "STANDARD"},
    ]


async def test_register_programs_answer_shows_the_merchants_programs_with_the_new_one(
    api: Api,
) -> None:
    """The answer's merchant lists the program just registered (outside attack helper-68:
    it listed the programs this process kept before the registration)."""
    await register(api, "haowu", "HUB", category="PLATFORM")
    await api.gql('{ merchant(id: "haowu") { programs { code } } }')  # kept: HUB alone
    made = await api.gql(
        """mutation P($input: RegisterProgramInput!) {
          registerProgram(input: $input) {
            program { code merchant { id programs { code kind } } }
            userErrors { code }
          }
        }""",
        {"input": HAOWU_GREEN},
    )
    payload = made["registerProgram"]
    assert payload["userErrors"] == []
    assert payload["program"]["merchant"]["programs"] == [
        {"code": "HUB", "kind": "STANDARD"},
        {"code": GREEN, "kind": "GREEN"},
    ]


async def test_green_lines_earn_green_points_beside_normal_points_in_one_transaction(
    api: Api, db_url: str
) -> None:
    world = await green_world(api)
    member, haowu = world["member"], world["keys"]["haowu"]
    purchase = lines(("LAMP-LED", "100.00", ["green", "lighting"]), ("RICE", "200", []))
    done = await accrue_lines(
        api, member, "300", purchase, order="bill-1", key=haowu, idempotency_key="k-1"
    )
    assert done["userErrors"] == []
    assert done["points"] == 300  # the whole amount at HUB's rate
    assert done["greenPoints"] == 200  # the lamp's 100 at HUB_GREEN's 2 per yuan
    assert done["entry"]["program"]["code"] == "HUB"
    after = await state(api, member)
    assert after["balances"] == {"HUB": 5300, "JADE": 0, GREEN: 200}

    # The GREEN account is opened under the member's HUB number, its lot on its own expiry.
    accounts = (
        await api.gql(
            """query S($id: ID!) { member(id: $id) { accounts { program { code }
                 externalRef expiring { points expiresAt } } } }""",
            {"id": member},
            key=haowu,
        )
    )["member"]["accounts"]
    green_account = next(a for a in accounts if a["program"]["code"] == GREEN)
    assert green_account["externalRef"] == "H-1"
    expires = dt.datetime.fromisoformat(green_account["expiring"][0]["expiresAt"])
    assert green_account["expiring"][0]["points"] == 200
    assert 170 <= (expires - NOW).days <= 190  # six months, not HUB's 24

    # A retry is the first answer again; other lines under the same key are a conflict.
    again = await accrue_lines(
        api, member, "300", purchase, order="bill-1", key=haowu, idempotency_key="k-1"
    )
    assert again == done
    other = lines(("LAMP-LED", "150.00", ["green"]), ("RICE", "150", []))
    conflict = await accrue_lines(
        api, member, "300", other, order="bill-1", key=haowu, idempotency_key="k-1"
    )
    assert conflict["userErrors"][0]["code"] == "IDEMPOTENCY_CONFLICT"
    # No lines: no green points; a purchase without green lines neither.
    plain = await accrue_lines(api, member, "50", None, key=haowu)
    assert (plain["points"], plain["greenPoints"]) == (50, None)
    no_green = await accrue_lines(api, member, "50", lines(("RICE", "50", [])), key=haowu)
    assert (no_green["points"], no_green["greenPoints"]) == (50, None)
    assert (await state(api, member))["balances"] == {"HUB": 5400, "JADE": 0, GREEN: 200}

    history = (
        await api.gql(
            """query H($id: ID!) { member(id: $id) { history(program: "HUB_GREEN") {
                 edges { node { kind points reference memo program { code } } } } } }""",
            {"id": member},
        )
    )["member"]["history"]["edges"]
    assert [e["node"] for e in history] == [
        {
            "kind": "ACCRUAL",
            "points": 200,
            "reference": "bill-1",
            "memo": "green lines of 100.00",
            "program": {"code": GREEN},
        }
    ]
    assert await verify_ledger(db_url) == []


async def test_lines_that_do_not_sum_to_the_amount_change_nothing(api: Api, db_url: str) -> None:
    world = await green_world(api)
    member = world["member"]
    before = await state(api, member)
    bad: dict[str, tuple[str, list[dict[str, Any]] | None, list[str]]] = {
        "lines short of the amount": (
            "300",
            lines(("LAMP", "100", ["green"]), ("RICE", "150", [])),
            ["input", "lines"],
        ),
        "lines past the amount": (
            "300",
            lines(("LAMP", "100", ["green"]), ("RICE", "200.01", [])),
            ["input", "lines"],
        ),
        "no lines at all": ("300", [], ["input", "lines"]),
        "a negative line": (
            "300",
            lines(("LAMP", "400", ["green"]), ("RETURN", "-100", [])),
            ["input", "lines", "1", "amount"],
        ),
        "a line in fractions of a cent": (
            "300",
            lines(("LAMP", "100.005", ["green"]), ("RICE", "199.995", [])),
            ["input", "lines", "0", "amount"],
        ),
        "a tag that is no tag": (
            "300",
            lines(("LAMP", "300", ["green light!"])),
            ["input", "lines", "0", "tags"],
        ),
        "an invisible sku": ("300", lines(("\u200b", "300", ["green"])), None),
    }
    for why, (amount, purchase, field) in bad.items():
        refused = await accrue_lines(api, member, amount, purchase, idempotency_key="same-key")
        assert refused["points"] is None and refused["greenPoints"] is None, why
        assert refused["userErrors"][0]["code"] == "INVALID_INPUT", (why, refused)
        if field:
            assert refused["userErrors"][0]["field"] == field, (why, refused)
    assert await state(api, member) == before
    # Nothing was kept of the refusals, not even the idempotency key.
    good = await accrue_lines(
        api,
        member,
        "300",
        lines(("LAMP", "100", ["GREEN"]), ("RICE", "200", [])),
        idempotency_key="same-key",
    )
    assert (good["points"], good["greenPoints"]) == (300, 200)

    # GREEN points are earned on green lines only, never accrued directly.
    direct = await accrue_lines(api, member, "100", None, program=GREEN)
    assert direct["userErrors"][0]["code"] == "INVALID_INPUT"
    assert direct["userErrors"][0]["field"] == ["input", "program"]
    assert (await state(api, member))["balances"] == {"HUB": 5300, "JADE": 0, GREEN: 200}
    assert await verify_ledger(db_url) == []


async def _promote(api: Api, program: str, multiplier: str, **extra: Any) -> dict[str, Any]:
    data = {
        "program": program,
        "accrualMultiplier": multiplier,
        "startsAt": (NOW - dt.timedelta(hours=1)).isoformat(),
        "endsAt": (NOW + dt.timedelta(days=7)).isoformat(),
        "label": f"x{multiplier}" + (f" on {'/'.join(extra['tags'])}" if "tags" in extra else ""),
        **extra,
    }
    payload: dict[str, Any] = (await api.gql(PROMOTION, {"input": data}))["setPromotion"]
    return payload


async def test_a_promotion_for_green_lines_doubles_their_points_within_the_cap(
    api: Api,
) -> None:
    world = await green_world(api)
    member = world["member"]
    purchase = lines(("LAMP", "100", ["green"]), ("RICE", "200", []))

    assert (await _promote(api, "HUB", "2", tags=["green"]))["ok"]
    done = await accrue_lines(api, member, "300", purchase)
    # HUB: the lamp's 100 doubled, the rice's 200 as usual; green points as usual.
    assert (done["points"], done["greenPoints"]) == (400, 200)
    assert done["entry"]["memo"] == "purchase of 300 (x2 on green)"
    unaffected = await accrue_lines(api, member, "300", lines(("RICE", "300", [])))
    assert unaffected["points"] == 300
    assert unaffected["entry"]["memo"] == "purchase of 300"

    # Promotions stack by multiplying: everyone's x2 on top makes the lamp x4.
    assert (await _promote(api, "HUB", "2"))["ok"]
    done = await accrue_lines(api, member, "300", purchase)
    assert done["points"] == 100 * 4 + 200 * 2
    # ... within the x20 cap: a x10 would make the green lines x40.
    capped = await _promote(api, "HUB", "10", tags=["lighting"])
    assert capped["ok"] is False
    assert capped["userErrors"][0]["code"] == "INVALID_INPUT"
    assert "x20" in capped["userErrors"][0]["message"]
    assert (await accrue_lines(api, member, "300", purchase))["points"] == 800

    # A promotion of the GREEN program for its green lines doubles the green points.
    assert (await _promote(api, GREEN, "2", tags=["green"]))["ok"]
    assert (await accrue_lines(api, member, "300", purchase))["greenPoints"] == 400
    # Tagged promotions change accrual only.
    mixed = await _promote(api, "HUB", "1", redemptionDiscountPercent="10", tags=["green"])
    assert mixed["userErrors"][0]["field"] == ["input", "tags"]
    bad_tag = await _promote(api, "HUB", "2", tags=["not a tag"])
    assert bad_tag["userErrors"][0]["code"] == "INVALID_INPUT"


CATALOG = """query C($filter: RewardFilter) { rewards(filter: $filter, first: 50) {
  edges { node { id tags price priceIn(program: "HUB_GREEN") payableWith { code } } } } }"""


async def _green_rewards(api: Api, world: dict[str, Any]) -> dict[str, Any]:
    jade = world["keys"]["jade"]
    straw = await upsert_reward(
        api,
        jade,
        ref="ECO-STRAW",
        kind="GOODS",
        title="Bamboo straw set",
        price=400,
        tags=["green", "Kitchen"],
    )
    meal = await upsert_reward(api, jade, ref="SET-MEAL", kind="MEAL", title="Set meal", price=200)
    bag = await upsert_reward(
        api,
        world["keys"]["haowu"],
        ref="TOTE",
        kind="GOODS",
        title="Recycled tote bag",
        price=300,
        tags=["green"],
    )
    return {"straw": straw, "meal": meal, "bag": bag}


async def test_green_points_pay_only_for_green_rewards(api: Api, db_url: str) -> None:
    world = await green_world(api)
    member = world["member"]
    rewards = await _green_rewards(api, world)
    await accrue_lines(api, member, "1000", lines(("SOLAR-LAMP", "1000", ["green"])))
    assert (await state(api, member))["balances"][GREEN] == 2000

    zone = (await api.gql(CATALOG, {"filter": {"payableWith": GREEN}}))["rewards"]["edges"]
    assert {e["node"]["id"]: e["node"]["tags"] for e in zone} == {
        "haowu:TOTE": ["green"],
        "jade:ECO-STRAW": ["green", "kitchen"],
    }
    everything = (await api.gql(CATALOG))["rewards"]["edges"]
    by_id = {e["node"]["id"]: e["node"] for e in everything}
    assert by_id["jade:SET-MEAL"]["priceIn"] is None
    assert GREEN not in [p["code"] for p in by_id["jade:SET-MEAL"]["payableWith"]]
    # 400 JADE at 0.8 JADE per HUB is 500 HUB, at 1 HUB per HUB_GREEN point.
    assert by_id["jade:ECO-STRAW"]["priceIn"] == 500
    assert GREEN in [p["code"] for p in by_id["jade:ECO-STRAW"]["payableWith"]]
    assert by_id["haowu:TOTE"]["priceIn"] == 300

    before = await state(api, member)
    refused = await redeem(api, member, rewards["meal"]["id"], GREEN)
    assert refused["redemption"] is None
    assert refused["userErrors"][0]["code"] == "INVALID_INPUT"
    assert refused["userErrors"][0]["field"] == ["input", "payWith"]
    assert "tagged 'green'" in refused["userErrors"][0]["message"]
    assert await state(api, member) == before  # no points moved, no redemption written

    paid = await redeem(api, member, rewards["straw"]["id"], GREEN)
    assert paid["userErrors"] == []
    assert (paid["redemption"]["status"], paid["redemption"]["points"]) == ("CONFIRMED", 500)
    assert (await state(api, member))["balances"][GREEN] == 1500
    owed = [o for o in await obligations(db_url) if o["reference"] == paid["redemption"]["id"]]
    # The obligation names the line's price in the reward's own points (issue 15, defect 4:
    # as a conversion leg names what arrives on its payee's side).
    assert [(o["debtor"], o["creditor"], o["program"], o["points"]) for o in owed] == [
        ("haowu", "jade", "JADE", 400)
    ]
    assert await verify_ledger(db_url) == []


async def test_green_points_are_never_converted_and_no_rate_leads_into_them(
    api: Api, db_url: str
) -> None:
    world = await green_world(api)
    member = world["member"]
    await accrue_lines(api, member, "100", lines(("LAMP", "100", ["green"])))
    before = await state(api, member)
    out = await convert(api, member, GREEN, "HUB", 100)
    assert out["userErrors"][0]["code"] == "INVALID_INPUT"
    assert out["userErrors"][0]["field"] == ["input", "from"]
    await set_rate(api, "JADE", "HUB", "1.25")
    into = await convert(api, member, "HUB", GREEN, 100)
    assert into["userErrors"][0]["field"] == ["input", "to"]
    quote = (
        await api.gql(
            QUOTE, {"input": {"memberId": member, "from": GREEN, "to": "JADE", "points": 100}}
        )
    )["quoteConversion"]
    assert quote["quote"] is None and quote["userErrors"][0]["code"] == "INVALID_INPUT"
    rate = (await api.gql(SET_RATE, {"input": {"from": "HUB", "to": GREEN, "rate": "1"}}))[
        "setExchangeRate"
    ]
    assert rate["rate"] is None
    assert rate["userErrors"][0] == {
        "field": ["input", "to"],
        "message": "HUB_GREEN is a GREEN program: its points are earned on green purchases "
        "only, so no rate leads into it.",
        "code": "INVALID_INPUT",
    }
    assert await state(api, member) == before
    assert await verify_ledger(db_url) == []


async def test_green_exchange_rates_change_through_versions(api: Api) -> None:
    world = await green_world(api)
    await _green_rewards(api, world)
    price = """{ reward(id: "haowu:TOTE") { priceIn(program: "HUB_GREEN") } }"""
    assert (await api.gql(price))["reward"]["priceIn"] == 300
    # A new version now: 2 HUB per green point halves the price in green points.
    await set_rate(api, GREEN, "HUB", "2")
    assert (await api.gql(price))["reward"]["priceIn"] == 150
    # A version that starts tomorrow changes nothing today.
    tomorrow = (NOW + dt.timedelta(days=1)).isoformat()
    await set_rate(api, GREEN, "HUB", "4", effectiveFrom=tomorrow)
    assert (await api.gql(price))["reward"]["priceIn"] == 150
    versions = (
        await api.gql('{ exchangeRates(from: "HUB_GREEN") { rate to { code } effectiveFrom } }')
    )["exchangeRates"]
    assert [(v["rate"], v["to"]["code"]) for v in versions] == [("2", "HUB")]


async def test_a_merchant_sees_its_green_accounts_and_another_merchant_does_not(
    api: Api,
) -> None:
    world = await green_world(api)
    member = world["member"]
    await accrue_lines(api, member, "100", lines(("LAMP", "100", ["green"])))
    query = """query S($id: ID!) { member(id: $id) { accounts { program { code } balance } } }"""
    haowu = (await api.gql(query, {"id": member}, key=world["keys"]["haowu"]))["member"]
    assert {a["program"]["code"] for a in haowu["accounts"]} == {"HUB", GREEN}
    jade = (await api.gql(query, {"id": member}, key=world["keys"]["jade"]))["member"]
    assert {a["program"]["code"] for a in jade["accounts"]} == {"JADE"}
    # Another merchant's member, who holds only HUB: jade sees nothing of them.
    other = await enroll(api, "HUB", "H-2", "Zhao Jing")
    assert (await api.gql(query, {"id": other}, key=world["keys"]["jade"]))["member"] is None
    # An accrual by another merchant's key into haowu's program is refused.
    refused = await api.gql(
        ACCRUE_LINES,
        {
            "input": {
                "memberId": member,
                "program": "HUB",
                "orderRef": "x-1",
                "amount": "100",
                "idempotencyKey": "x-1",
                "lines": lines(("LAMP", "100", ["green"])),
            }
        },
        key=world["keys"]["jade"],
    )
    assert refused["accruePoints"]["userErrors"][0]["code"] == "FORBIDDEN"
