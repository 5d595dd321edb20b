"""The demo's loyalty world (beside demo/world.py): tiers at the platform's
supermarket-style program `HUB` (Silver: free parking; Gold: double points and a
personal shopper), a member in each tier and one on the way, one with EXCELLENT credit,
a senior, the promotions that read them (seniors 15x, birthday month double, EXCELLENT
credit 1.5x and 10% off), and a limited reward that opens early to Gold and EXCELLENT."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from demo.seeding import ADMIN, offer, promote, purchase
from hub import credit, members, promotions
from hub.config import Settings
from hub.enums import CreditLevel, RewardKind
from hub.mall import catalog
from hub.tiers.ladder import TierSpec, set_tiers

PROGRAM = "HUB"

TIERS = [
    TierSpec(
        code="SILVER",
        name="Silver",
        min_spend=Decimal(2000),
        min_orders=5,
        benefits=["Free parking"],
    ),
    TierSpec(
        code="GOLD",
        name="Gold",
        min_spend=Decimal(8000),
        min_orders=12,
        accrual_multiplier=Decimal(2),
        redemption_discount_percent=Decimal(5),
        benefits=["Double points", "Personal shopper", "5% off in the mall with Haowu Points"],
    ),
]

# (name, membership number, birth date or None, credit level or None, purchases as
# (days ago, amount)); purchases are played in order, so the tiers rise as in life.
PEOPLE: list[dict[str, Any]] = [
    {
        "name": "孙丽 Sun Li",
        "ref": "H-2001",
        "purchases": [
            (200, "380"),
            (150, "420"),
            (100, "350"),
            (60, "500"),
            (30, "460"),
            (10, "390"),
        ],
    },
    {
        "name": "周强 Zhou Qiang",
        "ref": "H-2002",
        "birthday_this_month": 1985,
        "purchases": [(330 - 24 * i, str(650 + 25 * (i % 5))) for i in range(14)],
    },
    {
        "name": "吴娟 Wu Juan",
        "ref": "H-2003",
        "credit": CreditLevel.EXCELLENT,
        "purchases": [(45, "600"), (20, "700"), (5, "500")],
    },
    {
        "name": "郑国华 Zheng Guohua",
        "ref": "H-2004",
        "born": dt.date(1956, 3, 12),
        "purchases": [(5, "120"), (2, "80")],
    },
]


def _promotions(now: dt.datetime) -> list[promotions.NewPromotion]:
    year = (now - dt.timedelta(days=90), now + dt.timedelta(days=365))
    return [
        offer(
            PROGRAM,
            "Seniors' rule: 15x points at 60 and over",
            year,
            multiplier=15,
            min_age=60,
        ),
        offer(
            PROGRAM,
            "Birthday month: double points",
            year,
            multiplier=2,
            birthday_month=True,
        ),
        offer(
            PROGRAM,
            "Excellent credit: 1.5x points and 10% fewer points",
            year,
            multiplier=Decimal("1.5"),
            discount_percent=10,
            credit_levels=[CreditLevel.EXCELLENT],
        ),
    ]


async def seed(session: AsyncSession, settings: Settings, now: dt.datetime) -> str:
    """Tiers, promotions, the priority reward and the loyalty members; a summary."""
    await set_tiers(session, ADMIN, PROGRAM, TIERS)
    await promote(session, _promotions(now))
    await catalog.upsert_reward(
        session,
        ADMIN,
        catalog.NewReward(
            ref="MOONCAKE",
            kind=RewardKind.GOODS,
            title="Mid-Autumn mooncake gift box (limited)",
            price=1200,
            stock=30,
            description="Gold members and EXCELLENT credit first; everyone else three days later.",
            merchant_id="haowu",
            priority_until=now + dt.timedelta(days=3),
            priority_tiers=["GOLD"],
            priority_credit_levels=[CreditLevel.EXCELLENT],
        ),
    )
    local_month = now.astimezone(settings.tz).month
    for person in PEOPLE:
        born = person.get("born")
        if "birthday_this_month" in person:
            born = dt.date(person["birthday_this_month"], local_month, 15)
        member = await members.enroll(
            session,
            ADMIN,
            members.Enrollment(
                program=PROGRAM,
                external_ref=person["ref"],
                display_name=person["name"],
                birth_date=born,
            ),
        )
        if person.get("credit"):
            await credit.set_member_credit(session, member.id, person["credit"])
        for index, (days_ago, amount) in enumerate(person["purchases"]):
            order = f"seed-{person['ref']}-{index + 1}"
            occurred = now - dt.timedelta(days=days_ago, hours=2)
            await purchase(session, settings, member.id, PROGRAM, order, Decimal(amount), occurred)
    return (
        "tiers Silver and Gold at HUB, seniors' 15x, birthday and EXCELLENT-credit "
        f"promotions, a priority reward, {len(PEOPLE)} loyalty members"
    )
