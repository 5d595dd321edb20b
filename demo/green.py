"""The demo's green points and vouchers (beside demo/world.py): the platform's
GREEN program `HUB_GREEN` earned on green-tagged purchase lines, a green week doubling
HUB points on those lines, the mall's green zone (green-tagged rewards payable with
HUB_GREEN), a member with green purchases, and the vouchers: the Western restaurant's
"50 off 200" for 1,000 points and the 4S shop's car insurance voucher."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from demo.rewards import new_reward
from demo.seeding import ADMIN, offer, promote, purchase
from hub import green, members, merchants, vouchers
from hub.config import Settings
from hub.enums import ProgramKind, RewardKind
from hub.exchange import rates
from hub.mall import catalog

GREEN = "HUB_GREEN"

GREEN_PROGRAM = merchants.NewProgram(
    merchant_id="haowu",
    code=GREEN,
    name="Haowu Green Points",
    unit_name="point",
    kind=ProgramKind.GREEN,
    point_value=Decimal("0.10"),
    accrual_rate=Decimal(2),
    expiry_months=12,
)

# The green zone: rewards tagged green, payable with HUB_GREEN (1 HUB point each).
GREEN_REWARDS: list[dict[str, Any]] = [
    {
        "merchant_id": "haowu",
        "ref": "ECO-TOTE",
        "kind": RewardKind.GOODS,
        "title": "Recycled-cotton tote bag",
        "price": 300,
        "description": "Made from post-consumer cotton.",
    },
    {
        "merchant_id": "haowu",
        "ref": "LED-BULBS",
        "kind": RewardKind.GOODS,
        "title": "Energy-saving LED bulb set (6)",
        "price": 800,
        "stock": 50,
    },
    {
        "merchant_id": "clearview",
        "ref": "ECO-FRAMES",
        "kind": RewardKind.GOODS,
        "title": "Frames from recycled acetate",
        "price": 2400,
        "stock": 15,
    },
]

VOUCHERS: list[dict[str, Any]] = [
    {
        "merchant_id": "bistro",
        "ref": "FIFTY-OFF-200",
        "kind": RewardKind.VOUCHER,
        "title": "50 off a bill of 200",
        "price": 1000,
        "description": "At the table: show the code to your waiter.",
        "voucher": vouchers.Terms(Decimal(50), Decimal(200), 60),
    },
    {
        "merchant_id": "xingchen",
        "ref": "INSURANCE-500",
        "kind": RewardKind.VOUCHER,
        "title": "500 off your car insurance renewal",
        "price": 10000,
        "description": "On a renewal of 3,000 or more at the service desk.",
        "voucher": vouchers.Terms(Decimal(500), Decimal(3000), 180),
    },
]

# Li Wei's shopping at the platform: lamps and a shower head are green lines.
GREEN_PURCHASES = [
    (
        "seed-H-1002-green-1",
        [
            ("LED-LAMP-9W", "480.00", ["green"]),
            ("SHOWERHEAD-ECO", "300.00", ["green", "water"]),
            ("GROCERIES", "500.00", []),
        ],
    ),
    ("seed-H-1002-green-2", [("SOLAR-CHARGER", "150.00", ["green"]), ("TEA", "70.00", [])]),
]


async def seed(session: AsyncSession, settings: Settings, now: dt.datetime) -> str:
    """The GREEN program, its rate, the green zone, the green week, the vouchers, and a
    member's green purchases; a summary."""
    await merchants.register_program(session, GREEN_PROGRAM)
    await rates.set_rate(
        session, ADMIN, rates.NewRate(GREEN, "HUB", Decimal(1)), held=settings.rates_held_for
    )
    for reward in [*GREEN_REWARDS, *VOUCHERS]:
        await catalog.upsert_reward(
            session,
            ADMIN,
            new_reward(
                reward, reward["merchant_id"], tags=["green"] if reward in GREEN_REWARDS else []
            ),
        )
    month = offer(
        "HUB",
        "Green month: double points on green purchases",
        (now - dt.timedelta(days=1), now + dt.timedelta(days=30)),
        multiplier=2,
        tags=["green"],
    )
    await promote(session, [month])
    li_wei = await members.member_by_ref(session, "HUB", "H-1002")
    assert li_wei is not None, "the demo members are enrolled first"
    for order, lines in GREEN_PURCHASES:
        basket = [green.PurchaseLine(sku, Decimal(amount), tags) for sku, amount, tags in lines]
        total = sum((line.amount for line in basket), Decimal(0))
        await purchase(session, settings, li_wei.id, "HUB", order, total, lines=basket)
    return (
        f"{GREEN} at haowu, a green zone of {len(GREEN_REWARDS)} rewards, green month, "
        f"{len(VOUCHERS)} vouchers, Li Wei's green purchases"
    )
