"""The platform fee is charged on business, not on its reversal (issue 15, defect 5): a
refund reverses its redemption's fee, compensation is not a fee base, and the fee is
rate x (received - refunds) per merchant and batch; a refund landing in a later batch
gives that batch a negative FEE."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hub.config import Settings
from hub.db import Database, utcnow
from settlement import runs
from tests.helpers import (
    Api,
    accrue,
    cancel_redemption,
    enroll,
    redeem,
    register,
    running_app,
    set_rate,
    upsert_reward,
    verify_ledger,
)

BATCH = """
fragment B on SettlementBatch {
  obligationCount grossAmount
  positions { merchant { id } receivable payable fees net }
  statements { merchant { id } lines(first: 100) { edges { node { kind amount } } } }
}
mutation Run($d: Date!) { runSettlement(businessDate: $d) { batch { ...B } userErrors { code } } }
"""
READ = BATCH.split("mutation")[0] + (
    "query Read($d: Date!) { settlementBatch(businessDate: $d) { ...B } }"
)


def _today(settings: Settings) -> dt.date:
    return utcnow().astimezone(settings.tz).date()


@pytest.fixture
async def fee_api(settings: Settings) -> AsyncIterator[Api]:
    async with running_app(settings.model_copy(update={"platform_fee_bps": 100})) as api:
        yield api


@pytest.fixture
async def shop(fee_api: Api) -> dict[str, Any]:
    """JADE pays for clearview's 100.00 lens (2,000 CLEAR x 0.05) with 1,000 JADE."""
    api = fee_api
    await register(api, "haowu", "HUB", category="PLATFORM", pointValue="0.10")
    await register(api, "jade", "JADE", category="RESTAURANT", pointValue="0.10")
    await register(
        api, "clearview", "CLEAR", category="RETAIL", pointValue="0.05", compensationPercent="10"
    )
    await upsert_reward(
        api, merchantId="clearview", ref="LENS", kind="GOODS", title="Lens pair", price=2000
    )
    await set_rate(api, "JADE", "CLEAR", "2")
    member = await enroll(api, "JADE", "J-1")
    await enroll(api, "CLEAR", "C-1", member_id=member)
    await accrue(api, member, "JADE", "5000")
    paid = await redeem(api, member, "clearview:LENS", "JADE")
    assert paid["redemption"]["settlementPrice"] == "100.00", paid
    return {"member": member, "redemption": paid["redemption"]["id"]}


async def _run(api: Api, day: dt.date) -> dict[str, Any]:
    data = await api.gql(BATCH, {"d": day.isoformat()})
    assert data["runSettlement"]["userErrors"] == []
    batch: dict[str, Any] = data["runSettlement"]["batch"]
    return batch


def _positions(batch: dict[str, Any]) -> dict[str, tuple[str, str, str, str]]:
    return {
        p["merchant"]["id"]: (p["receivable"], p["payable"], p["fees"], p["net"])
        for p in batch["positions"]
    }


def _fee_lines(batch: dict[str, Any]) -> dict[str, list[str]]:
    return {
        s["merchant"]["id"]: [
            e["node"]["amount"] for e in s["lines"]["edges"] if e["node"]["kind"] == "FEE"
        ]
        for s in batch["statements"]
    }


async def test_a_redemption_cancelled_the_same_day_costs_no_fee_and_no_gross(
    fee_api: Api, shop: dict[str, Any], settings: Settings, db_url: str
) -> None:
    cancelled = await cancel_redemption(fee_api, shop["redemption"])
    assert cancelled["redemption"]["status"] == "CANCELLED"
    batch = await _run(fee_api, _today(settings))
    # It charged 1.00 to each side and reported 200.00 gross for no business at all.
    assert batch["grossAmount"] == "0.00"
    assert _positions(batch) == {
        "clearview": ("100.00", "100.00", "0.00", "0.00"),
        "jade": ("100.00", "100.00", "0.00", "0.00"),
    }
    assert all(fees == [] for fees in _fee_lines(batch).values())
    assert await verify_ledger(db_url) == []


async def test_compensation_is_not_a_fee_base(
    fee_api: Api, shop: dict[str, Any], settings: Settings, db_url: str
) -> None:
    cancelled = await cancel_redemption(fee_api, shop["redemption"], "MERCHANT_CANCELLED")
    assert cancelled["redemption"]["compensationPoints"] == 100  # 10% of 1,000 JADE
    batch = await _run(fee_api, _today(settings))
    assert batch["grossAmount"] == "10.00"  # the compensation: 100 JADE x 0.10
    assert _positions(batch) == {
        "clearview": ("100.00", "110.00", "0.00", "-10.00"),
        "jade": ("110.00", "100.00", "0.00", "10.00"),
    }
    assert await verify_ledger(db_url) == []


async def test_a_refund_in_a_later_batch_gives_the_fee_back(
    fee_api: Api, shop: dict[str, Any], settings: Settings, db_url: str
) -> None:
    today = _today(settings)
    first = await _run(fee_api, today)
    assert _positions(first)["clearview"] == ("100.00", "0.00", "1.00", "99.00")
    assert _positions(first)["haowu"] == ("1.00", "0.00", "0.00", "1.00")
    cancelled = await cancel_redemption(fee_api, shop["redemption"])
    assert cancelled["redemption"]["status"] == "CANCELLED"
    # The refund is dated today, whose batch has closed: it lands in tomorrow's.
    db = Database(db_url)
    try:
        tomorrow = today + dt.timedelta(days=1)
        await runs.run_date(
            db, settings.model_copy(update={"platform_fee_bps": 100}), tomorrow, "test"
        )
    finally:
        await db.dispose()
    later = (await fee_api.gql(READ, {"d": tomorrow.isoformat()}))["settlementBatch"]
    assert later["grossAmount"] == "-100.00"  # business less refunds
    assert _positions(later) == {
        "clearview": ("0.00", "100.00", "-1.00", "-99.00"),
        "haowu": ("-1.00", "0.00", "0.00", "-1.00"),  # the fee it gives back
        "jade": ("100.00", "0.00", "0.00", "100.00"),
    }
    assert _fee_lines(later) == {"clearview": ["1.00"], "haowu": ["-1.00"], "jade": []}
    assert await verify_ledger(db_url) == []
