"""One member's accruals, conversions, redemptions and cancellations all at once: each is
answered (data, or a userError with a code), none with an internal error; the ledger
balances (outside attack helper-86: 16 of 56 answered INTERNAL, 'deadlock detected')."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from hub.config import Settings
from tests.helpers import (
    ACCRUE,
    CANCEL,
    CONVERT,
    REDEEM,
    accrue,
    create_key,
    enroll,
    redeem,
    register,
    running_app,
    set_rate,
    upsert_reward,
    verify_ledger,
)
from tests.test_hot_paths import _quiet


async def test_one_members_writes_at_once_are_each_answered(settings: Settings) -> None:
    async with running_app(_quiet(settings)) as api:
        await register(api, "haowu", "HUB", category="PLATFORM")
        await register(api, "teahouse", "TEA")
        await set_rate(api, "HUB", "TEA", "2")
        await set_rate(api, "TEA", "HUB", "0.5")
        shop = await create_key(api, "MERCHANT", "teahouse")
        await upsert_reward(api, shop, ref="GIFT", kind="GOODS", title="Tea gift", price=100)
        member = await enroll(api, "HUB", "H-1")
        await enroll(api, "TEA", "T-1", member_id=member)
        assert (await accrue(api, member, "HUB", "20000"))["userErrors"] == []
        assert (await accrue(api, member, "TEA", "10000"))["userErrors"] == []
        earlier = [
            (await redeem(api, member, "teahouse:GIFT", "HUB"))["redemption"]["id"]
            for _ in range(6)
        ]
        requests: list[tuple[str, dict[str, Any]]] = []
        for n in range(10):
            for program in ("HUB", "TEA"):
                order = f"{program}-{n}"
                requests.append(
                    (
                        ACCRUE,
                        {
                            "memberId": member,
                            "program": program,
                            "orderRef": order,
                            "amount": "10",
                            "idempotencyKey": order,
                        },
                    )
                )
        for n in range(8):
            for source, target in (("HUB", "TEA"), ("TEA", "HUB")):
                requests.append(
                    (
                        CONVERT,
                        {
                            "memberId": member,
                            "from": source,
                            "to": target,
                            "points": 100,
                            "idempotencyKey": f"convert-{source}-{n}",
                        },
                    )
                )
        for n in range(6):
            for pay in ("HUB", "TEA"):
                requests.append(
                    (
                        REDEEM,
                        {
                            "memberId": member,
                            "rewardId": "teahouse:GIFT",
                            "payWith": pay,
                            "quantity": 1,
                            "idempotencyKey": f"redeem-{pay}-{n}",
                        },
                    )
                )
        for n, rid in enumerate(earlier):
            requests.append(
                (
                    CANCEL,
                    {"redemptionId": rid, "reason": "MEMBER_REQUEST", "idempotencyKey": f"c-{n}"},
                )
            )
        random.Random(7).shuffle(requests)
        answers = await asyncio.gather(
            *(api.post(query, {"input": variables}) for query, variables in requests)
        )
        bodies = [answer.json() for answer in answers]
        failed = [body for body in bodies if body.get("errors")]
        assert failed == [], failed[:3]
        for body in bodies:
            (payload,) = body["data"].values()
            assert all(error["code"] for error in payload["userErrors"]), payload
    assert await verify_ledger(settings.database_url) == []
