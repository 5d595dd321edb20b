"""Prices in any program: the rates in effect and active promotions, read once per request."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub import obligations, promotions
from hub.enums import MerchantCategory, RewardKind, SettlementBasis
from hub.exchange.pricing import Leg, points_needed, price_to_receive
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


@dataclass(frozen=True)
class Line:
    """A redemption line priced once, for its whole quantity."""

    price_points: int  # the reward's price x quantity, in its merchant's points
    points: int  # what the member pays, in the paying program
    legs: list[Leg]  # the conversion the payment goes through; none in the reward's program
    settlement: Decimal  # what the paying merchant owes the reward's merchant for the line
    basis: SettlementBasis


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
            .where(Merchant.category == MerchantCategory.PLATFORM.value)
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
            by_merchant={p.merchant_id: p for p in programs.values()},
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
        route = self.route(program, own)
        return None if route is None else points_needed(route, price)

    def line(self, reward: Reward, program: str, quantity: int) -> Line | None:
        """`quantity` units paid in `program`, priced as one conversion of their whole price
        (a unit price rounded up for the payer and multiplied would charge each unit's
        rounding again); None if `program` cannot pay."""
        own = self.program_of(reward)
        price_points = self.price(reward) * quantity
        settlement, basis = settlement_prices.for_line(
            reward.settlement_price,
            reward.settlement_contracted,
            price_points,
            own.point_value,
            quantity,
        )
        if program == own.code:
            return Line(price_points, price_points, [], settlement, basis)
        route = self.route(program, own.code)
        priced = None if route is None else price_to_receive(route, price_points)
        if priced is None:
            return None
        return Line(price_points, priced.points, priced.legs, settlement, basis)

    def payable_with(self, reward: Reward) -> list[str]:
        own = self.program_of(reward).code
        return [
            code
            for code in sorted(self.programs)
            if code == own or self.route(code, own) is not None
        ]

    def settlement_unit(self, reward: Reward) -> Decimal:
        """What the paying merchant owes the reward's merchant per unit: the points' worth,
        or less if the merchant asked less, or an ADMIN's contracted price."""
        worth = obligations.amount_for(self.price(reward), self.program_of(reward).point_value)
        return settlement_prices.per_unit(
            reward.settlement_price, reward.settlement_contracted, worth
        )
