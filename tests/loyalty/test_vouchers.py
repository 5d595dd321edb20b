"""Vouchers through GraphQL over HTTP: a VOUCHER reward's terms, the code a confirmed
redemption gets (unique, unguessable, shown in full to the member and ADMIN only), the till's
useVoucher (once, idempotent per order, refused below the minimum spend, after validUntil and
at another merchant's till), and cancellation of unused vouchers only."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import update

from hub import vouchers
from hub.db import Database
from hub.models import Reward
from tests.helpers import (
    ADMIN_KEY,
    UPSERT,
    Api,
    cancel_redemption,
    create_key,
    member_session,
    redeem,
    upsert_reward,
    verify_ledger,
)
from tests.loyalty.green_world import green_world, state

CST = dt.timezone(dt.timedelta(hours=8))  # the settlement time zone, Asia/Shanghai

CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){3}$")
MASKED = re.compile(r"^\*{5}-\*{5}-\*{5}-[0-9A-HJKMNP-TV-Z]{5}$")
FIFTY_OFF = {
    "ref": "FIFTY-OFF",
    "kind": "VOUCHER",
    "title": "50 off a bill of 200",
    "price": 1000,
    "voucher": {"faceValue": "50", "minSpend": "200", "validDays": 30},
}
USE = """
mutation U($code: String!, $order: String!, $amount: Decimal!) {
  useVoucher(code: $code, orderRef: $order, orderAmount: $amount) {
    voucher { code faceValue minSpend validUntil usedAt orderRef }
    userErrors { field message code }
  }
}"""
VOUCHER = """query V($code: String!) { voucher(code: $code) {
  code faceValue minSpend validUntil usedAt orderRef } }"""
REDEMPTION = """query R($id: ID!) { redemption(id: $id) { status points refundedPoints
  voucher { code faceValue minSpend validUntil usedAt orderRef } } }"""


@pytest.fixture
async def world(api: Api) -> dict[str, Any]:
    found = await green_world(api)
    found["reward"] = await upsert_reward(api, found["keys"]["jade"], **FIFTY_OFF)
    found["token"] = await member_session(api, found["member"])
    found["finance"] = await create_key(api, "FINANCE")
    return found


async def _voucher_of(api: Api, world: dict[str, Any]) -> dict[str, Any]:
    """Redeem the 50-off voucher with HUB points as the member; the redemption with its voucher."""
    done = await redeem(api, world["member"], world["reward"]["id"], "HUB", key=ADMIN_KEY)
    assert done["userErrors"] == [], done
    found = (await api.gql(REDEMPTION, {"id": done["redemption"]["id"]}))["redemption"]
    return {"id": done["redemption"]["id"], **found}


async def _use(api: Api, key: str, code: str, order: str, amount: str) -> dict[str, Any]:
    data = await api.gql(USE, {"code": code, "order": order, "amount": amount}, key=key)
    payload: dict[str, Any] = data["useVoucher"]
    return payload


async def test_a_voucher_reward_carries_terms_and_bad_terms_are_refused(
    api: Api, world: dict[str, Any]
) -> None:
    jade = world["keys"]["jade"]
    shown = (
        await api.gql(
            '{ reward(id: "jade:FIFTY-OFF") { kind price '
            "voucher { faceValue minSpend validDays } } }"
        )
    )["reward"]
    assert shown == {
        "kind": "VOUCHER",
        "price": 1000,
        "voucher": {"faceValue": "50.00", "minSpend": "200.00", "validDays": 30},
    }
    defaults = await upsert_reward(
        api, jade, ref="TEN", kind="VOUCHER", title="10 off", price=100, voucher={"faceValue": "10"}
    )
    assert defaults["id"] == "jade:TEN"
    assert (await api.gql('{ reward(id: "jade:TEN") { voucher { minSpend validDays } } }'))[
        "reward"
    ]["voucher"] == {"minSpend": "0.00", "validDays": 90}
    bad = {
        "a voucher without terms (no code could be issued)": (
            {"voucher": None},
            ["input", "voucher"],
        ),
        "terms on a meal": ({"kind": "MEAL"}, ["input", "voucher"]),
        "a face value of nothing": (
            {"voucher": {"faceValue": "0"}},
            ["input", "voucher", "faceValue"],
        ),
        "a face value in fractions of a cent": (
            {"voucher": {"faceValue": "10.001"}},
            ["input", "voucher", "faceValue"],
        ),
        "a minimum spend below the face value": (
            {"voucher": {"faceValue": "50", "minSpend": "30"}},
            ["input", "voucher", "minSpend"],
        ),
        "a negative minimum spend": (
            {"voucher": {"faceValue": "50", "minSpend": "-1"}},
            ["input", "voucher", "minSpend"],
        ),
        "no days": ({"voucher": {"faceValue": "50", "validDays": 0}}, None),
        "ten years and a day": ({"voucher": {"faceValue": "50", "validDays": 3651}}, None),
    }
    for why, (extra, field) in bad.items():
        data = {**FIFTY_OFF, "ref": "BAD", **extra}
        payload = (await api.gql(UPSERT, {"input": data}, key=jade))["upsertReward"]
        assert payload["reward"] is None, why
        assert payload["userErrors"][0]["code"] == "INVALID_INPUT", (why, payload)
        if field:
            assert payload["userErrors"][0]["field"] == field, why
    assert (await api.gql('{ reward(id: "jade:BAD") { id } }'))["reward"] is None


async def test_confirmation_gives_a_unique_code_shown_in_full_to_the_member_only(
    api: Api, world: dict[str, Any]
) -> None:
    member, token = world["member"], world["token"]
    storefront = await create_key(api, "STOREFRONT")
    reward = world["reward"]["id"]
    paid = await redeem(api, member, reward, "HUB", key=storefront, member_token=token)
    assert paid["userErrors"] == [], paid
    assert (paid["redemption"]["status"], paid["redemption"]["points"]) == ("CONFIRMED", 1250)
    rid = paid["redemption"]["id"]
    as_member = (await api.gql(REDEMPTION, {"id": rid}, key=storefront, member_token=token))[
        "redemption"
    ]
    voucher = as_member["voucher"]
    assert CODE.fullmatch(voucher["code"]), voucher
    assert (voucher["faceValue"], voucher["minSpend"]) == ("50.00", "200.00")
    assert (voucher["usedAt"], voucher["orderRef"]) == (None, None)
    valid_until = dt.datetime.fromisoformat(voucher["validUntil"])
    assert abs(valid_until - (dt.datetime.now(dt.UTC) + dt.timedelta(days=30))) < dt.timedelta(
        minutes=5
    )
    assert (await api.gql(REDEMPTION, {"id": rid}))["redemption"]["voucher"] == voucher

    # The merchant and finance see the voucher, not the code that spends it.
    for key in (world["keys"]["jade"], world["finance"]):
        seen = (await api.gql(REDEMPTION, {"id": rid}, key=key))["redemption"]["voucher"]
        assert MASKED.fullmatch(seen["code"]) and seen["code"][-5:] == voucher["code"][-5:]
        assert seen["faceValue"] == "50.00"

    # Every redemption its own code; one voucher per redemption.
    codes = {voucher["code"]} | {(await _voucher_of(api, world))["voucher"]["code"]}
    assert len(codes) == 2
    two = await redeem(api, member, world["reward"]["id"], "HUB", quantity=2)
    assert two["redemption"] is None
    assert two["userErrors"][0]["field"] == ["input", "quantity"]
    # The code is 100 random bits (20 characters of 32), from the secrets module.
    assert len(set(vouchers.ALPHABET)) == 32
    assert len({vouchers.new_code() for _ in range(1000)}) == 1000


async def test_the_till_uses_a_voucher_once_and_a_retry_for_the_order_answers_the_same(
    api: Api, world: dict[str, Any]
) -> None:
    jade = world["keys"]["jade"]
    code = (await _voucher_of(api, world))["voucher"]["code"]
    used = await _use(api, jade, code, "TABLE-7", "236.50")
    assert used["userErrors"] == []
    assert used["voucher"]["code"] == code
    assert (used["voucher"]["orderRef"], used["voucher"]["faceValue"]) == ("TABLE-7", "50.00")
    assert used["voucher"]["usedAt"] is not None

    # The till retries (its answer was lost), the way a person types it: the same answer.
    typed = code.lower().replace("-", " ")
    assert await _use(api, jade, typed, "TABLE-7", "236.50") == used
    conflict = await _use(api, jade, code, "TABLE-7", "300")
    assert conflict["userErrors"][0]["code"] == "IDEMPOTENCY_CONFLICT"
    assert conflict["userErrors"][0]["message"] == (
        "This voucher was used for order 'TABLE-7' of 236.50, not 300.00."
    )
    # Any other order: used once is used.
    twice = await _use(api, jade, code, "TABLE-9", "500")
    assert twice["voucher"] is None
    assert twice["userErrors"][0]["code"] == "INVALID_STATE"
    assert "TABLE-7" in twice["userErrors"][0]["message"]
    # The time in the settlement time zone, as every other message gives it (outside
    # attack helper-72: it read in UTC).
    used_at = dt.datetime.fromisoformat(used["voucher"]["usedAt"]).astimezone(CST)
    assert used_at.isoformat(timespec="minutes") in twice["userErrors"][0]["message"]

    shown = (await api.gql(VOUCHER, {"code": code}, key=jade))["voucher"]
    assert shown == used["voucher"]
    assert (await api.gql(VOUCHER, {"code": code}))["voucher"] == used["voucher"]
    assert (await api.gql(VOUCHER, {"code": code}, key=world["keys"]["haowu"]))["voucher"] is None
    errors = await api.errors(VOUCHER, {"code": code}, key=world["finance"])
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_voucher_is_refused_below_its_minimum_after_its_date_and_at_another_till(
    api: Api, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    jade, haowu = world["keys"]["jade"], world["keys"]["haowu"]
    redemption = await _voucher_of(api, world)
    code = redemption["voucher"]["code"]
    refused = {
        "an order below the minimum spend": (jade, code, "199.99", "BELOW_MINIMUM", "orderAmount"),
        "another merchant's till": (haowu, code, "500", "FORBIDDEN", "code"),
        "an unknown code": (jade, vouchers.new_code(), "500", "NOT_FOUND", "code"),
        "something that is no code": (jade, "' OR 1=1 --", "500", "NOT_FOUND", "code"),
        "an amount of nothing": (jade, code, "0", "INVALID_INPUT", "orderAmount"),
    }
    for why, (key, given, amount, error, field) in refused.items():
        payload = await _use(api, key, given, f"ORDER-{field}", amount)
        assert payload["voucher"] is None, why
        assert payload["userErrors"][0]["code"] == error, (why, payload)
        assert payload["userErrors"][0]["field"] == [field], why
    assert "Jade" in (await _use(api, haowu, code, "X", "500"))["userErrors"][0]["message"]
    below = (await _use(api, jade, code, "ORDER-LOW", "199.99"))["userErrors"][0]["message"]
    assert below == "This voucher needs an order of at least 200.00; this one is 199.99."
    unchanged = (await api.gql(REDEMPTION, {"id": redemption["id"]}))["redemption"]["voucher"]
    assert unchanged == redemption["voucher"]

    # Thirty days and a minute later, the voucher has expired.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=30, minutes=1)
    monkeypatch.setattr(vouchers, "utcnow", lambda: later)
    expired = await _use(api, jade, code, "LATE-1", "500")
    assert expired["userErrors"][0]["code"] == "INVALID_STATE"
    assert "expired" in expired["userErrors"][0]["message"]
    monkeypatch.undo()
    # ... and before that, the minimum reached, it is used.
    assert (await _use(api, jade, code, "ORDER-OK", "200"))["userErrors"] == []


async def test_an_unused_voucher_is_cancelled_for_a_refund_and_a_used_one_is_not(
    api: Api, world: dict[str, Any], db_url: str
) -> None:
    member, jade = world["member"], world["keys"]["jade"]
    start = (await state(api, member))["balances"]["HUB"]
    unused = await _voucher_of(api, world)
    used = await _voucher_of(api, world)
    assert (await state(api, member))["balances"]["HUB"] == start - 2 * 1250
    assert (await _use(api, jade, used["voucher"]["code"], "T-1", "300"))["userErrors"] == []

    refused = await cancel_redemption(api, used["id"])
    assert refused["userErrors"][0]["code"] == "INVALID_STATE"
    assert "used" in refused["userErrors"][0]["message"]
    assert (await api.gql(REDEMPTION, {"id": used["id"]}))["redemption"]["status"] == "CONFIRMED"
    assert (await state(api, member))["balances"]["HUB"] == start - 2 * 1250

    cancelled = await cancel_redemption(api, unused["id"])
    assert cancelled["userErrors"] == []
    assert (cancelled["redemption"]["status"], cancelled["redemption"]["refundedPoints"]) == (
        "CANCELLED",
        1250,
    )
    assert (await state(api, member))["balances"]["HUB"] == start - 1250
    void = await _use(api, jade, unused["voucher"]["code"], "T-2", "300")
    assert void["userErrors"][0]["code"] == "INVALID_STATE"
    assert "cancelled" in void["userErrors"][0]["message"]
    assert await verify_ledger(db_url) == []


async def test_concurrent_tills_and_a_cancellation_use_a_voucher_once(
    api: Api, world: dict[str, Any], db_url: str
) -> None:
    jade = world["keys"]["jade"]
    code = (await _voucher_of(api, world))["voucher"]["code"]
    results = await asyncio.gather(*(_use(api, jade, code, f"RACE-{n}", "250") for n in range(6)))
    winners = [r for r in results if r["userErrors"] == []]
    assert len(winners) == 1
    assert {r["userErrors"][0]["code"] for r in results if r["userErrors"]} == {"INVALID_STATE"}

    member = world["member"]
    before = (await state(api, member))["balances"]["HUB"]
    other = await _voucher_of(api, world)
    use, cancel = await asyncio.gather(
        _use(api, jade, other["voucher"]["code"], "RACE-X", "250"),
        cancel_redemption(api, other["id"], key=ADMIN_KEY),
    )
    # Exactly one of them happened: a used voucher, or a refund.
    assert (use["userErrors"] == []) != (cancel["userErrors"] == [])
    refunded = cancel["userErrors"] == []
    assert (await state(api, member))["balances"]["HUB"] == before - (0 if refunded else 1250)
    assert await verify_ledger(db_url) == []


async def test_a_voucher_reward_stored_without_terms_redeems_without_a_code(
    api: Api, world: dict[str, Any], db_url: str
) -> None:
    """upsertReward refuses a VOUCHER without terms; one stored before it did is still
    listed, redeemed and cancelled as a reward without a code."""
    db = Database(db_url)
    try:
        async with db.write() as session:
            await session.execute(
                update(Reward)
                .where(Reward.id == world["reward"]["id"])
                .values(voucher_face_value=None, voucher_min_spend=None, voucher_valid_days=None)
            )
    finally:
        await db.dispose()
    shown = await api.gql('{ reward(id: "jade:FIFTY-OFF") { kind voucher { faceValue } } }')
    assert shown["reward"] == {"kind": "VOUCHER", "voucher": None}
    redemption = await _voucher_of(api, world)
    assert (redemption["status"], redemption["voucher"]) == ("CONFIRMED", None)
    cancelled = await cancel_redemption(api, redemption["id"])
    assert cancelled["userErrors"] == []
    assert await verify_ledger(db_url) == []
