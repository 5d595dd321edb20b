"""A redemption line is priced once, for its whole quantity, with the conversion's own
function; what the paying merchant owes is the reward's settlement price for the
quantity, valued on the reward's side as a conversion leg is (issue 15, defect 4)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.helpers import (
    Api,
    accrue,
    balances,
    cancel_redemption,
    create_key,
    enroll,
    obligations,
    redeem,
    register,
    set_rate,
    upsert_reward,
    verify_ledger,
)


@pytest.fixture
async def shop(api: Api) -> dict[str, Any]:
    """HUB pays CLEAR one for one, in steps of 100 from 100; a 150-CLEAR reward."""
    await register(api, "haowu", "HUB", category="PLATFORM", pointValue="0.10")
    await register(api, "clearview", "CLEAR", category="RETAIL", pointValue="0.10")
    key = await create_key(api, "MERCHANT", "clearview")
    await upsert_reward(api, key, ref="CLOTH", kind="GOODS", title="Lens cloth", price=150)
    await set_rate(api, "HUB", "CLEAR", "1", minPoints=100, step=100)
    member = await enroll(api, "HUB", "H-1", "Liu Yang")
    await enroll(api, "CLEAR", "C-1", member_id=member)
    await accrue(api, member, "HUB", "1000")
    return {"member": member, "key": key}


async def test_three_units_cost_what_converting_their_whole_price_costs(
    api: Api, shop: dict[str, Any], db_url: str
) -> None:
    # Per unit: 150 CLEAR needs 200 HUB (the step); x 3 = 600 HUB, of which 150 HUB paid
    # for nothing anyone was owed. The whole line, 450 CLEAR, needs 500 HUB.
    quote = await api.gql('{ reward(id: "clearview:CLOTH") { priceIn(program: "HUB") } }')
    assert quote["reward"]["priceIn"] == 200  # one unit, as before
    paid = await redeem(api, shop["member"], "clearview:CLOTH", "HUB", quantity=3)
    assert paid["userErrors"] == [], paid
    assert paid["redemption"]["points"] == 500
    assert paid["redemption"]["settlementPrice"] == "45.00"
    assert (await balances(api, shop["member"]))["HUB"] == 500
    owed = await obligations(db_url)
    # Valued on the reward's side, as a conversion leg is: 450 CLEAR x 0.10.
    assert [
        (o["kind"], o["debtor"], o["creditor"], o["program"], o["points"], o["amount"])
        for o in owed
    ] == [("REDEMPTION", "haowu", "clearview", "CLEAR", 450, Decimal("45.00"))]
    assert await verify_ledger(db_url) == []


async def test_a_cancelled_line_gives_back_what_it_took_and_owes_back_what_it_owed(
    api: Api, shop: dict[str, Any], db_url: str
) -> None:
    paid = await redeem(api, shop["member"], "clearview:CLOTH", "HUB", quantity=3)
    cancelled = await cancel_redemption(api, paid["redemption"]["id"], key=shop["key"])
    assert cancelled["userErrors"] == []
    assert cancelled["redemption"]["refundedPoints"] == 500
    assert (await balances(api, shop["member"]))["HUB"] == 1000
    owed = [
        (o["kind"], o["debtor"], o["creditor"], o["program"], o["points"], o["amount"])
        for o in await obligations(db_url)
    ]
    assert owed[:2] == [
        ("REDEMPTION", "haowu", "clearview", "CLEAR", 450, Decimal("45.00")),
        ("REFUND", "clearview", "haowu", "CLEAR", 450, Decimal("45.00")),
    ]
    assert await verify_ledger(db_url) == []


async def test_a_routed_line_is_priced_once_through_both_legs(
    api: Api, shop: dict[str, Any], db_url: str
) -> None:
    # JADE -> HUB -> CLEAR, the first leg in steps of 100: 450 CLEAR needs 450 HUB, which
    # needs 360 JADE at 1.25, so 400; per unit, 150 HUB needed 120 JADE, so 200, x 3 = 600.
    await register(api, "jade", "JADE", category="RESTAURANT", pointValue="0.125")
    await set_rate(api, "JADE", "HUB", "1.25", minPoints=100, step=100)
    await enroll(api, "JADE", "J-1", member_id=shop["member"])
    await accrue(api, shop["member"], "JADE", "1000")
    paid = await redeem(api, shop["member"], "clearview:CLOTH", "JADE", quantity=3)
    assert paid["userErrors"] == [], paid
    assert paid["redemption"]["points"] == 400
    assert (await balances(api, shop["member"]))["JADE"] == 600
    owed = await obligations(db_url)
    assert [(o["kind"], o["debtor"], o["program"], o["points"], o["amount"]) for o in owed] == [
        ("REDEMPTION", "jade", "CLEAR", 450, Decimal("45.00"))
    ]
    assert await verify_ledger(db_url) == []
