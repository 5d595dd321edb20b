"""Prices in any program: the rates in effect and active promotions, read once per request."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub import green, obligations, promotions
from hub.enums import MerchantCategory, ProgramKind, RewardKind
from hub.exchange.pricing import points_needed
from hub.exchange.rates import rates_in_effect
from hub.mall import settlement_prices
from hub.models import ExchangeRate, Merchant, Program, Promotion, Reward

SLOTTED = {
    RewardKind.HOTEL_NIGHT.value,
    RewardKind.ROOM_UPGRADE.value,
    RewardKind.HOTEL_SERVICE.value,
    RewardKind.AWARD_FLIGHT.value,
    RewardKind.ATTRACTION_TICKET.value,
}


@dataclass
class PriceBook:
    rates: dict[tuple[str, str], ExchangeRate]
    platform: str | None
    programs: dict[str, Program]
    by_merchant: dict[str, Program]
    discounts: dict[str, list[Promotion]]

    @classmethod
    async def load(cls, session: AsyncSession, at: dt.datetime) -> PriceBook:
        rates = {
            (r.from_code, r.to_code): r for r in await rates_in_effect(session, at, None, None)
        }
        programs = {p.code: p for p in await session.scalars(select(Program))}
        platform = await session.scalar(
            select(Program.code)
            .join(Merchant, Merchant.id == Program.merchant_id)
            .where(
                Merchant.category == MerchantCategory.PLATFORM.value,
                Program.kind == ProgramKind.STANDARD.value,
            )
        )
        active = await session.scalars(
            select(Promotion).where(Promotion.starts_at <= at, Promotion.ends_at > at)
        )
        discounts: dict[str, list[Promotion]] = {}
        for promotion in active:
            discounts.setdefault(promotion.program_code, []).append(promotion)
        return cls(
            rates=rates,
            platform=platform,
            programs=programs,
            by_merchant={
                p.merchant_id: p for p in programs.values() if p.kind == ProgramKind.STANDARD.value
            },
            discounts=discounts,
        )

    def program_of(self, reward: Reward) -> Program:
        return self.by_merchant[reward.merchant_id]

    def route(self, source: str, target: str) -> list[ExchangeRate] | None:
        direct = self.rates.get((source, target))
        if direct is not None:
            return [direct]
        if self.platform and self.platform not in (source, target):
            first = self.rates.get((source, self.platform))
            second = self.rates.get((self.platform, target))
            if first is not None and second is not None:
                return [first, second]
        return None

    def price(self, reward: Reward) -> int:
        """The reward's price in its merchant's points, the best active discount applied."""
        code = self.program_of(reward).code
        return promotions.discounted_price(reward.price, self.discounts.get(code, []))

    def price_in(self, reward: Reward, program: str) -> int | None:
        """What one unit costs in `program`, rounded up for the payer; None if it cannot pay."""
        own = self.program_of(reward).code
        price = self.price(reward)
        if program == own:
            return price
        payer = self.programs.get(program)
        if payer is None or not green.may_pay(payer, reward):
            return None
        route = self.route(program, own)
        return None if route is None else points_needed(route, price)

    def payable_with(self, reward: Reward) -> list[str]:
        own = self.program_of(reward).code
        return [
            code
            for code in sorted(self.programs)
            if code == own
            or (green.may_pay(self.programs[code], reward) and self.route(code, own) is not None)
        ]

    def settlement_unit(self, reward: Reward) -> Decimal:
        """What the paying merchant owes the reward's merchant per unit: the points' worth,
        or less if the merchant asked less, or an ADMIN's contracted price."""
        worth = obligations.amount_for(self.price(reward), self.program_of(reward).point_value)
        return settlement_prices.per_unit(
            reward.settlement_price, reward.settlement_contracted, worth
        )
