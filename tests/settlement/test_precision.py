"""Obligations keep 4 decimal places; a statement rounds once per counterparty total
(issue 15, defect 10): 4 points at 0.001 were owed as 0.00, however many there were."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from hub.config import Settings
from hub.db import utcnow
from tests.helpers import (
    Api,
    accrue,
    convert,
    enroll,
    obligations,
    register,
    set_rate,
    verify_ledger,
)

RUN = """
mutation Run($d: Date!) {
  runSettlement(businessDate: $d) {
    batch { grossAmount
            positions { merchant { id } receivable payable fees net }
            payments { from { id } to { id } amount }
            statements { merchant { id } net counterparties { counterparty { id } receivable }
                         lines(first: 100) { edges { node { amount points } } } } }
    userErrors { code }
  }
}"""


@pytest.fixture
async def tiny(api: Api) -> str:
    """AA points convert one for one into BB points worth 0.001 each."""
    await register(api, "aa", "AA", pointValue="0.10")
    await register(api, "bb", "BB", pointValue="0.001")
    await set_rate(api, "AA", "BB", "1")
    member = await enroll(api, "AA", "A-1")
    await enroll(api, "BB", "B-1", member_id=member)
    await accrue(api, member, "AA", "1000")
    return member


async def _settle(api: Api, settings: Settings) -> dict[str, Any]:
    today = utcnow().astimezone(settings.tz).date()
    data = await api.gql(RUN, {"d": today.isoformat()})
    assert data["runSettlement"]["userErrors"] == []
    batch: dict[str, Any] = data["runSettlement"]["batch"]
    return batch


def _positions(batch: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    return {
        p["merchant"]["id"]: (p["receivable"], p["payable"], p["fees"], p["net"])
        for p in batch["positions"]
    }


async def test_four_points_at_a_tenth_of_a_cent_are_owed(
    api: Api, tiny: str, settings: Settings, db_url: str
) -> None:
    for _ in range(5):
        assert (await convert(api, tiny, "AA", "BB", 4))["userErrors"] == []
    owed = await obligations(db_url)
    assert [(o["points"], o["amount"]) for o in owed] == [(4, Decimal("0.0040"))] * 5
    batch = await _settle(api, settings)
    # 5 x 0.0040 = 0.02; rounded to the cent per line it was 5 x 0.00.
    assert _positions(batch) == {
        "aa": ("0.00", "0.02", "0.00", "-0.02"),
        "bb": ("0.02", "0.00", "0.00", "0.02"),
    }
    assert [(p["from"]["id"], p["to"]["id"], p["amount"]) for p in batch["payments"]] == [
        ("aa", "bb", "0.02")
    ]
    bb = next(s for s in batch["statements"] if s["merchant"]["id"] == "bb")
    assert bb["counterparties"] == [{"counterparty": {"id": "aa"}, "receivable": "0.02"}]
    # A line shows its own total rounded to 2 places.
    assert [e["node"] for e in bb["lines"]["edges"]] == [{"amount": "0.00", "points": 4}] * 5
    assert await verify_ledger(db_url) == []


async def test_a_counterparty_total_is_rounded_once(
    api: Api, tiny: str, settings: Settings, db_url: str
) -> None:
    for _ in range(3):
        assert (await convert(api, tiny, "AA", "BB", 5))["userErrors"] == []
    assert [o["amount"] for o in await obligations(db_url)] == [Decimal("0.0050")] * 3
    batch = await _settle(api, settings)
    # 0.015 rounds half-up to 0.02 once; each line rounded on its own made 0.03.
    assert _positions(batch)["bb"] == ("0.02", "0.00", "0.00", "0.02")
    assert batch["grossAmount"] == "0.02"  # 0.0150 shown with 2 places
    assert sum(Decimal(p["net"]) for p in batch["positions"]) == 0
    assert await verify_ledger(db_url) == []
