"""Shared by the loyalty tests: setting tiers, accruing at a given time, reading standings."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from hub.db import Database
from hub.models import OutboxEvent
from tests.helpers import ADMIN_KEY, ENROLL, Api

SET_TIERS = """
mutation T($program: ID!, $tiers: [TierInput!]!) {
  setTiers(program: $program, tiers: $tiers) {
    program { code tiers { code name minSpend minOrders accrualMultiplier
                           redemptionDiscountPercent benefits } }
    userErrors { field message code }
  }
}"""

STANDING = """
query S($id: ID!, $program: ID!) {
  member(id: $id) {
    account(program: $program) {
      balance
      tier { tier { code name benefits } qualifyingSpend qualifyingOrders
             next { code } spendToNext ordersToNext }
    }
  }
}"""

SET_CREDIT = """
mutation C($id: ID!, $level: CreditLevel!) {
  setMemberCredit(memberId: $id, level: $level) {
    member { id creditLevel } userErrors { field message code }
  }
}"""
# Ages and birthday months are reckoned on the local date (HUB_SETTLEMENT_TZ).
TODAY = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()

PROMOTION = """mutation P($input: PromotionInput!) {
  setPromotion(input: $input) { ok userErrors { code field message } } }"""

ACCRUE_AT = """
mutation A($input: AccruePointsInput!) {
  accruePoints(input: $input) { points entry { memo } userErrors { field message code } }
}"""

SILVER = {
    "code": "SILVER",
    "name": "Silver",
    "minSpend": "1000",
    "minOrders": 2,
    "benefits": ["Free parking"],
}
GOLD = {
    "code": "GOLD",
    "name": "Gold",
    "minSpend": "5000.00",
    "minOrders": 3,
    "accrualMultiplier": "2",
    "redemptionDiscountPercent": "10",
    "benefits": ["Double points", "Personal shopper"],
}


async def set_tiers(
    api: Api, program: str, tiers: list[dict[str, Any]], key: str = ADMIN_KEY
) -> dict[str, Any]:
    data = await api.gql(SET_TIERS, {"program": program, "tiers": tiers}, key=key)
    payload: dict[str, Any] = data["setTiers"]
    return payload


async def accrue_at(
    api: Api,
    member: str,
    program: str,
    amount: str,
    at: dt.datetime | None = None,
    *,
    key: str = ADMIN_KEY,
    idempotency_key: str | None = None,
    order: str | None = None,
) -> dict[str, Any]:
    order = order or f"order-{secrets.token_hex(4)}"
    data = await api.gql(
        ACCRUE_AT,
        {
            "input": {
                "memberId": member,
                "program": program,
                "orderRef": order,
                "amount": amount,
                "occurredAt": at.isoformat() if at else None,
                "idempotencyKey": idempotency_key or order,
            }
        },
        key=key,
    )
    payload: dict[str, Any] = data["accruePoints"]
    assert payload["userErrors"] == [], payload
    return payload


async def standing(api: Api, member: str, program: str, **kw: Any) -> dict[str, Any]:
    data = await api.gql(STANDING, {"id": member, "program": program}, **kw)
    account: dict[str, Any] = data["member"]["account"]
    return account


async def promote(api: Api, program: str, label: str, key: str = ADMIN_KEY, **extra: Any) -> Any:
    now = dt.datetime.now(dt.UTC)
    data = await api.gql(
        PROMOTION,
        {
            "input": {
                "program": program,
                "startsAt": (now - dt.timedelta(days=1)).isoformat(),
                "endsAt": (now + dt.timedelta(days=30)).isoformat(),
                "label": label,
                **extra,
            }
        },
        key=key,
    )
    return data["setPromotion"]


async def events(url: str, kind: str) -> list[dict[str, Any]]:
    """The outbox's events of one kind, oldest first, as merchants receive them."""
    import json

    db = Database(url)
    try:
        async with db.read() as session:
            rows = await session.scalars(
                select(OutboxEvent).where(OutboxEvent.type == kind).order_by(OutboxEvent.id)
            )
            return [json.loads(r.payload) for r in rows]
    finally:
        await db.dispose()


async def person(api: Api, program: str, ref: str, born: dt.date | None = None) -> str:
    """A member enrolled with a birth date (or none)."""
    data = await api.gql(
        ENROLL,
        {
            "input": {
                "program": program,
                "externalRef": ref,
                "displayName": f"Member {ref}",
                "birthDate": born.isoformat() if born else None,
            }
        },
    )
    assert data["enrollMember"]["userErrors"] == [], data
    member: str = data["enrollMember"]["member"]["id"]
    return member


async def set_credit(api: Api, member: str, level: str, **kw: Any) -> dict[str, Any]:
    data = await api.gql(SET_CREDIT, {"id": member, "level": level}, **kw)
    payload: dict[str, Any] = data["setMemberCredit"]
    return payload


def born(years_ago: int, month: int | None = None) -> dt.date:
    """A birth date `years_ago` years back, in `month` (default: six months from now's)."""
    month = month or (TODAY.month + 5) % 12 + 1
    return dt.date(TODAY.year - years_ago, month, 1)
