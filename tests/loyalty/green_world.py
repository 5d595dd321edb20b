"""Shared by the green points and voucher tests: a platform with a GREEN program, a
restaurant, a member, and the GraphQL documents they use."""

from __future__ import annotations

import secrets
from typing import Any

from tests.helpers import ADMIN_KEY, Api, accrue, create_key, enroll, register, set_rate

REGISTER_PROGRAM = """
mutation P($input: RegisterProgramInput!) {
  registerProgram(input: $input) {
    program { code name unitName kind pointValue accrualRate expiryMonths connector
              merchant { id program { code } } }
    userErrors { field message code }
  }
}"""

ACCRUE_LINES = """
mutation A($input: AccruePointsInput!) {
  accruePoints(input: $input) {
    points greenPoints
    entry { kind points program { code } reference memo }
    userErrors { field message code }
  }
}"""

PROMOTION = """mutation P($input: PromotionInput!) {
  setPromotion(input: $input) { ok userErrors { code field message } } }"""

STATE = """
query S($id: ID!) {
  member(id: $id) {
    accounts { program { code kind } externalRef balance expiring { points expiresAt } }
    redemptions { edges { node { id } } }
  }
}"""

GREEN = "HUB_GREEN"


async def register_green(api: Api, merchant: str = "haowu", **extra: Any) -> dict[str, Any]:
    data = {
        "merchantId": merchant,
        "code": GREEN,
        "name": "Haowu Green Points",
        "kind": "GREEN",
        "pointValue": "0.10",
        "accrualRate": "2",
        "expiryMonths": 6,
        **extra,
    }
    payload: dict[str, Any] = (await api.gql(REGISTER_PROGRAM, {"input": data}))["registerProgram"]
    return payload


def lines(*items: tuple[str, str, list[str]]) -> list[dict[str, Any]]:
    return [{"sku": sku, "amount": amount, "tags": tags} for sku, amount, tags in items]


async def accrue_lines(
    api: Api,
    member: str,
    amount: str,
    purchase_lines: list[dict[str, Any]] | None,
    *,
    program: str = "HUB",
    order: str | None = None,
    key: str = ADMIN_KEY,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    order = order or f"order-{secrets.token_hex(4)}"
    data = {
        "memberId": member,
        "program": program,
        "orderRef": order,
        "amount": amount,
        "idempotencyKey": idempotency_key or f"accrue-{order}",
    }
    if purchase_lines is not None:
        data["lines"] = purchase_lines
    payload: dict[str, Any] = (await api.gql(ACCRUE_LINES, {"input": data}, key=key))[
        "accruePoints"
    ]
    return payload


async def state(api: Api, member: str) -> dict[str, Any]:
    """Balances by program, and the member's redemption ids."""
    found = (await api.gql(STATE, {"id": member}))["member"]
    return {
        "balances": {a["program"]["code"]: a["balance"] for a in found["accounts"]},
        "redemptions": [e["node"]["id"] for e in found["redemptions"]["edges"]],
    }


async def green_world(api: Api) -> dict[str, Any]:
    """haowu (HUB, 1 point per yuan) with HUB_GREEN (2 per yuan on green lines, 6 months),
    jade (JADE), rates HUB_GREEN -> HUB 1:1 and HUB -> JADE 0.8; a member in HUB and JADE."""
    await register(api, "haowu", "HUB", category="PLATFORM", pointValue="0.10", expiryMonths=24)
    await register(api, "jade", "JADE", category="RESTAURANT", pointValue="0.125")
    green = await register_green(api)
    assert green["userErrors"] == [], green
    await set_rate(api, GREEN, "HUB", "1")
    await set_rate(api, "HUB", "JADE", "0.8")
    keys = {m: await create_key(api, "MERCHANT", m) for m in ("haowu", "jade")}
    member = await enroll(api, "HUB", "H-1", "Liu Yang")
    await enroll(api, "JADE", "J-1", member_id=member)
    await accrue(api, member, "HUB", "5000")
    return {"keys": keys, "member": member}
