"""No balance outgrows what GraphQL's Int can show: promotion multipliers are capped, one
accrual is capped, and a credit past 2^31-1 is refused cleanly (accrual, conversion,
refund), with nothing moved; a refund that would pass it waits for room. All through HTTP."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import update

from hub.db import utcnow
from hub.mall import saga
from hub.models import Redemption
from hub.promotions import MAX_ACCRUAL_MULTIPLIER
from hub.validate import MAX_BALANCE, MAX_POINTS_PER_MOVEMENT
from tests.helpers import (
    Api,
    accrue,
    balances,
    convert,
    enroll,
    redeem,
    register,
    set_rate,
    upsert_reward,
    verify_ledger,
)

PROMOTION = """mutation P($input: PromotionInput!) {
  setPromotion(input: $input) { ok userErrors { code field message } } }"""
NOW = dt.datetime.now(dt.UTC)


async def _promote(api: Api, multiplier: str, label: str, days: tuple[int, int] = (-1, 1)) -> Any:
    data = await api.gql(
        PROMOTION,
        {
            "input": {
                "program": "JADE",
                "accrualMultiplier": multiplier,
                "startsAt": (NOW + dt.timedelta(days=days[0])).isoformat(),
                "endsAt": (NOW + dt.timedelta(days=days[1])).isoformat(),
                "label": label,
            }
        },
    )
    return data["setPromotion"]


async def test_three_stacked_x100_promotions_are_refused(api: Api, db_url: str) -> None:
    await register(api, "jade", "JADE", accrualRate="1")
    member = await enroll(api, "JADE", "J-1")
    assert MAX_ACCRUAL_MULTIPLIER == 20
    for label in ("a", "b", "c"):
        refused = await _promote(api, "100", label)
        assert refused["ok"] is False
        assert refused["userErrors"][0]["code"] == "INVALID_INPUT"
        assert refused["userErrors"][0]["field"] == ["input", "accrualMultiplier"]
    # Stacking within the cap is fine (x5 then x4 = x20); one more overlapping is not.
    assert (await _promote(api, "5", "five"))["ok"]
    assert (await _promote(api, "4", "four", (0, 2)))["ok"]
    stacked = await _promote(api, "2", "two", (0, 3))
    assert stacked["ok"] is False and stacked["userErrors"][0]["code"] == "INVALID_INPUT"
    assert "20" in stacked["userErrors"][0]["message"]
    # The same x2 in a period that overlaps neither is fine.
    assert (await _promote(api, "2", "later", (10, 11)))["ok"]
    earned = await accrue(api, member, "JADE", "100")
    assert earned["points"] == 2000
    assert await verify_ledger(db_url) == []


async def test_one_accrual_is_capped(api: Api, db_url: str) -> None:
    await register(api, "jade", "JADE", accrualRate="100000")
    member = await enroll(api, "JADE", "J-1")
    amount = str(MAX_POINTS_PER_MOVEMENT // 100_000 + 1)  # one unit more than the cap allows
    refused = await accrue(api, member, "JADE", amount)
    assert refused["points"] is None
    assert refused["userErrors"][0]["code"] == "INVALID_INPUT"
    assert refused["userErrors"][0]["field"] == ["input", "amount"]
    assert await balances(api, member) == {"JADE": 0}
    ok = await accrue(api, member, "JADE", str(MAX_POINTS_PER_MOVEMENT // 100_000))
    assert ok["points"] == MAX_POINTS_PER_MOVEMENT
    assert await verify_ledger(db_url) == []


async def _near_the_cap(api: Api, member: str, program: str) -> int:
    """Fill the member's balance to within one accrual of 2^31-1; the balance."""
    for _ in range(MAX_BALANCE // MAX_POINTS_PER_MOVEMENT):
        payload = await accrue(api, member, program, str(MAX_POINTS_PER_MOVEMENT // 1000))
        assert payload["userErrors"] == [], payload
    return (MAX_BALANCE // MAX_POINTS_PER_MOVEMENT) * MAX_POINTS_PER_MOVEMENT


async def test_a_credit_past_the_int_range_is_refused(api: Api, db_url: str) -> None:
    await register(api, "jade", "JADE", accrualRate="1000")
    member = await enroll(api, "JADE", "J-1")
    full = await _near_the_cap(api, member, "JADE")
    assert full + MAX_POINTS_PER_MOVEMENT > MAX_BALANCE
    refused = await accrue(api, member, "JADE", str(MAX_POINTS_PER_MOVEMENT // 1000))
    assert refused["userErrors"][0]["code"] == "INVALID_INPUT"
    assert "2,147,483,647" in refused["userErrors"][0]["message"]
    # Which input it is about (outside attack helper-79: the field was null).
    assert refused["userErrors"][0]["field"] == ["input", "amount"]
    assert await balances(api, member) == {"JADE": full}  # readable, and unchanged
    assert await verify_ledger(db_url) == []


async def test_a_conversion_into_a_full_balance_is_refused_cleanly(api: Api, db_url: str) -> None:
    await register(api, "jade", "JADE", accrualRate="1000")
    await register(api, "lotus", "LOTUS", accrualRate="1000")
    member = await enroll(api, "JADE", "J-1")
    await enroll(api, "LOTUS", "L-1", member_id=member)
    full = await _near_the_cap(api, member, "JADE")
    await accrue(api, member, "LOTUS", "100000")  # 1e8 LOTUS
    await set_rate(api, "LOTUS", "JADE", "1")
    response = await api.post(
        "mutation C($input: ConvertPointsInput!) { convertPoints(input: $input) "
        "{ conversion { status pointsCredited } userErrors { code message } } }",
        {
            "input": {
                "memberId": member,
                "from": "LOTUS",
                "to": "JADE",
                "points": MAX_POINTS_PER_MOVEMENT,
                "idempotencyKey": "fill-up",
            }
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body, body
    payload = body["data"]["convertPoints"]
    # Refused up front, before any point moved (outside attack 2026-12-04: it debited the
    # source, then reversed the debit).
    assert payload["conversion"] is None, payload
    assert payload["userErrors"][0]["code"] == "INVALID_INPUT", payload
    assert "2,147,483,647" in payload["userErrors"][0]["message"]
    assert await balances(api, member) == {"JADE": full, "LOTUS": MAX_POINTS_PER_MOVEMENT}
    assert await verify_ledger(db_url) == []


async def test_a_conversion_cannot_credit_more_than_one_movement(api: Api) -> None:
    await register(api, "jade", "JADE", accrualRate="1000")
    await register(api, "lotus", "LOTUS")
    member = await enroll(api, "JADE", "J-1")
    await enroll(api, "LOTUS", "L-1", member_id=member)
    await accrue(api, member, "JADE", "2000")  # 2,000,000 JADE
    await set_rate(api, "JADE", "LOTUS", "1000")
    payload = await convert(api, member, "JADE", "LOTUS", 1_000_000)  # would credit 1e9
    assert payload["userErrors"][0]["code"] == "INVALID_INPUT"
    assert await balances(api, member) == {"JADE": 2_000_000, "LOTUS": 0}


async def test_a_refund_into_a_full_balance_is_refused_cleanly(api: Api, db_url: str) -> None:
    await register(api, "jade", "JADE", accrualRate="1000")
    member = await enroll(api, "JADE", "J-1")
    await accrue(api, member, "JADE", "100000")  # 1e8
    reward = await upsert_reward(
        api,
        merchantId="jade",
        ref="BANQUET",
        kind="MEAL",
        title="Banquet",
        price=MAX_POINTS_PER_MOVEMENT,
    )
    bought = await redeem(api, member, reward["id"], "JADE")
    assert bought["userErrors"] == [], bought
    full = await _near_the_cap(api, member, "JADE")
    response = await api.post(
        "mutation X($input: CancelRedemptionInput!) { cancelRedemption(input: $input) "
        "{ redemption { status } userErrors { code message } } }",
        {
            "input": {
                "redemptionId": bought["redemption"]["id"],
                "reason": "MEMBER_REQUEST",
                "idempotencyKey": "cancel-1",
            }
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body, body
    payload = body["data"]["cancelRedemption"]
    # Outside attack (2026-12-04): the cancellation was refused outright, though a refund
    # that would pass the cap is to wait for room, never be lost (a partner's own
    # cancellation of the booking cannot be refused). It is under way; nothing moved yet.
    assert payload["userErrors"] == [], payload
    assert payload["redemption"]["status"] == "PENDING", payload
    waiting = await api.gql(
        "query($id: ID!) { redemption(id: $id) { failure { code message } } }",
        {"id": bought["redemption"]["id"]},
    )
    why = waiting["redemption"]["failure"]  # what the refund waits for, to the member
    assert why["code"] == "INVALID_INPUT" and "spend or convert points first" in why["message"]
    assert why["message"].endswith("The points are being returned."), why
    assert await balances(api, member) == {"JADE": full}
    assert await verify_ledger(db_url) == []
    # Room is made: the refund lands when the saga is next resumed, once.
    spent = await redeem(api, member, reward["id"], "JADE")
    assert spent["userErrors"] == [], spent
    runtime = api.app.state.runtime
    async with runtime.db.write() as session:
        await session.execute(  # its backoff passed, as if time had
            update(Redemption).values(
                next_attempt_at=None, updated_at=utcnow() - dt.timedelta(seconds=5)
            )
        )
    await saga.resume_due(runtime.db, runtime.settings, runtime.connectors)
    await saga.resume_due(runtime.db, runtime.settings, runtime.connectors)
    data = await api.gql(
        "query($id: ID!) { redemption(id: $id) { status refundedPoints } }",
        {"id": bought["redemption"]["id"]},
    )
    assert data["redemption"] == {"status": "CANCELLED", "refundedPoints": MAX_POINTS_PER_MOVEMENT}
    assert await balances(api, member) == {"JADE": full}  # spent 1e8, refunded 1e8
    assert await verify_ledger(db_url) == []
