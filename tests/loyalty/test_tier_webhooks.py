"""TIER_CHANGED reaches the program's merchant as a signed webhook, up at the accrual that
qualifies and down at the nightly review, through a real receiver on loopback."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from connectors import signing
from hub.config import Settings
from hub.db import Database
from hub.ledger.points import add_months
from hub.models import AccrualAmount, WebhookDelivery
from hub.tiers.review import review_tiers
from hub.webhooks.delivery import Dispatcher
from tests.helpers import Api, create_key, enroll, quiet_settings, register
from tests.loyalty.ladders import GOLD, SILVER, accrue_at, set_tiers
from tests.webhooks.test_outbound import RECEIVING, SUBSCRIBE, Receiver, _until, serve


@pytest.fixture
def settings(db_url: str) -> Settings:
    return quiet_settings(db_url, **RECEIVING)


async def test_tier_changes_reach_the_merchant_signed(
    api: Api, settings: Settings, db_url: str
) -> None:
    await register(api, "haowu", "HUB", category="PLATFORM", accrualRate="1")
    haowu = await create_key(api, "MERCHANT", "haowu")
    await set_tiers(api, "HUB", [SILVER, GOLD], key=haowu)
    member = await enroll(api, "HUB", "H-1")
    async with serve(Receiver()) as receiver:
        made = await api.gql(
            SUBSCRIBE, {"input": {"url": receiver.url, "events": ["TIER_CHANGED"]}}, key=haowu
        )
        secret = made["subscribeWebhook"]["secret"]
        for amount in ("700", "700"):
            await accrue_at(api, member, "HUB", amount)
        db = Database(db_url)
        dispatcher = Dispatcher(db, settings)
        try:

            async def delivered(count: int) -> bool:
                async with db.read() as s:
                    statuses = list(await s.scalars(select(WebhookDelivery.status)))
                return statuses == ["DELIVERED"] * count

            await _until(dispatcher, lambda: delivered(1))
            # A year on, the purchases no longer qualify: the review lowers the member.
            async with db.write() as s:
                for row in await s.scalars(select(AccrualAmount)):
                    row.occurred_at = add_months(row.occurred_at, -13)
            reviewed = await review_tiers(db, settings)
            assert reviewed.moved_down == 1
            await _until(dispatcher, lambda: delivered(2))
        finally:
            await dispatcher.close()
            await db.dispose()
    moves = []
    for headers, body in receiver.received:
        assert (
            signing.verify(secret, headers["x-hub-timestamp"], headers["x-hub-signature"], body)
            is None
        )
        event = json.loads(body)
        assert event["type"] == "TIER_CHANGED" and event["merchantId"] == "haowu"
        assert "Li Wei" not in body.decode()  # ids and amounts, never a name
        moves.append((event["data"]["from"], event["data"]["to"], event["data"]["direction"]))
    assert moves == [(None, "SILVER", "UP"), ("SILVER", None, "DOWN")]
