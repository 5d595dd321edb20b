"""The hub process killed mid-saga: after a restart the sweeper finishes the conversion."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.helpers import CONVERT, Api, enroll, register, set_rate
from tests.partners import Partners, register_connected
from tests.process import HubProcess, partner_env


@pytest.mark.parametrize("side", ["debit", "credit"])
async def test_hub_killed_mid_saga_resumes_on_restart(
    hub: Api, live_partners: Partners, db_url: str, side: str
) -> None:
    await register(hub, "haowu", "HUB", category="PLATFORM")
    await register_connected(hub, live_partners, "skyair", "SKYMILES", "AIRLINE", timeoutSeconds=20)
    await register_connected(hub, live_partners, "lotus", "LOTUS", "HOTEL", timeoutSeconds=20)
    await live_partners.member("skyair", "SK-1", 5000)
    await live_partners.member("lotus", "L-1", 0)
    member = await enroll(hub, "SKYMILES", "SK-1")
    await enroll(hub, "LOTUS", "L-1", member_id=member)
    await set_rate(hub, "SKYMILES", "LOTUS", "1.5")
    faulty = "skyair" if side == "debit" else "lotus"
    # The partner applies the call, then keeps the hub waiting: the hub dies meanwhile.
    await live_partners.faults(faulty, lose_response=True, hang_seconds=30, operations=[side])
    env = {**partner_env(live_partners.secrets()), "HUB_SWEEP_INTERVAL_SECONDS": "0.2"}
    first = HubProcess(db_url, env=env)
    await first.start()
    request = asyncio.create_task(
        first.gql(
            CONVERT,
            {
                "input": {
                    "memberId": member,
                    "from": "SKYMILES",
                    "to": "LOTUS",
                    "points": 1000,
                    "idempotencyKey": "crash-1",
                }
            },
        )
    )
    sandbox = live_partners.sandbox(faulty)
    for _ in range(400):
        if sandbox.stats[side] >= 1:
            break
        await asyncio.sleep(0.025)
    assert sandbox.stats[side] >= 1, "the call reached the partner"
    await asyncio.sleep(0.1)
    first.kill()
    request.cancel()
    with contextlib.suppress(BaseException):
        await request
    await live_partners.faults(faulty)
    second = HubProcess(db_url, env=env)
    await second.start()
    try:
        status = None
        for _ in range(200):  # the restarted hub's sweeper resumes the saga on its own
            status = await _conversion_status(db_url)
            if status in ("COMPLETED", "REVERSED", "FAILED"):
                break
            await asyncio.sleep(0.05)
        assert status == "COMPLETED"
        assert live_partners.balance("skyair", "SK-1") == 4000
        assert live_partners.balance("lotus", "L-1") == 1500
    finally:
        second.stop()


async def _conversion_status(url: str) -> str | None:
    from sqlalchemy import select

    from hub.db import Database
    from hub.models import Conversion

    db = Database(url)
    try:
        async with db.read() as session:
            return await session.scalar(select(Conversion.status))
    finally:
        await db.dispose()
